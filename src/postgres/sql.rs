//! An authenticated sqlx connection over TCP that returns rows as text.

use std::net::SocketAddr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{ConnectOptions, Connection as _, Row};

use super::{Failure, Login};

/// A connection that passed authentication.
pub struct Connection(Box<PgConnection>);

/// Connect to `address` as `login` without TLS (the stack's servers listen on Docker networks), giving up after
/// `timeout`.
pub async fn connect(address: SocketAddr, login: &Login, timeout: Duration) -> Result<Connection, Failure> {
    let options = PgConnectOptions::new_without_pgpass()
        .host(&address.ip().to_string())
        .port(address.port())
        .username(&login.user)
        .password(&login.password)
        .database(&login.database)
        .ssl_mode(PgSslMode::Disable)
        .application_name("ragctl");
    match tokio::time::timeout(timeout, options.connect()).await {
        Ok(Ok(conn)) => Ok(Connection(Box::new(conn))),
        Ok(Err(e)) => Err(failure(&e)),
        Err(_) => Err(Failure::TimedOut { after_secs: timeout.as_secs() }),
    }
}

fn failure(err: &sqlx::Error) -> Failure {
    match err {
        sqlx::Error::Database(db) => Failure::Server {
            sqlstate: db.code().map(|c| c.into_owned()).unwrap_or_default(),
            message: db.message().to_string(),
        },
        other => Failure::Other(other.to_string()),
    }
}

impl Connection {
    /// Rows of `sql`, every column as text (a query casts its columns to `text`; NULL reads as empty).
    pub async fn rows(&mut self, sql: &str) -> Result<Vec<Vec<String>>, String> {
        let rows = sqlx::query(sql).fetch_all(self.0.as_mut()).await.map_err(|e| e.to_string())?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| row.try_get::<Option<String>, _>(i).map(Option::unwrap_or_default))
                    .collect::<Result<Vec<String>, _>>()
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    /// Say goodbye to the server (a dropped socket is logged by PostgreSQL as an unexpected EOF).
    pub async fn close(self) {
        let _ = self.0.close().await;
    }
}
