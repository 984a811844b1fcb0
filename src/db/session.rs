//! Finding the container and the route that reaches its server, and the [`Session`] over that route.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

use super::{CONNECT_TIMEOUT, Credentials, DbContext, DbError, INCOMPATIBLE_DATA_LOG, Instance};
use crate::docker::{DockerClient, ObservedContainer};
use crate::postgres::{self, Failure, Login, psql::Psql};

/// Whether the host can route to a container address at all (it cannot on Docker Desktop or a remote engine).
const ROUTE_PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// How the server was reached; reported, because "it works from here" depends on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Route {
    /// The port the container publishes on the host (middleware shape).
    PublishedPort { address: SocketAddr },
    /// The container's address on its Docker network, from the host (Linux, local engine).
    ContainerAddress { address: SocketAddr },
    /// `psql` run inside the container.
    DockerExec { container: String },
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::PublishedPort { address } => write!(f, "published port {address}"),
            Route::ContainerAddress { address } => write!(f, "container address {address}"),
            Route::DockerExec { container } => write!(f, "docker exec in {container}"),
        }
    }
}

/// The running container of an instance, with what routing needs.
#[derive(Debug, Clone)]
pub struct Located {
    pub instance: Instance,
    pub container: ObservedContainer,
    pub ip: Option<IpAddr>,
    pub published: Option<SocketAddr>,
}

/// The instance's containers (one, or N replicas), as Docker lists them.
pub async fn containers_of(ctx: &DbContext<'_>, instance: Instance) -> Result<Vec<ObservedContainer>, DbError> {
    Ok(ctx
        .containers
        .clone()
        .map_err(|message| DbError::Docker { message })?
        .iter()
        .filter(|c| c.service == instance.service)
        .cloned()
        .collect())
}

/// The instance's first container, which must be running.
pub async fn locate(ctx: &DbContext<'_>, instance: Instance) -> Result<Located, DbError> {
    let container = containers_of(ctx, instance)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| DbError::ContainerMissing { service: instance.service.into(), project: ctx.project.into() })?;
    locate_container(ctx, instance, container).await
}

/// `container` with its address, if it runs; otherwise why not (from its log when the data directory is the cause).
pub async fn locate_container(
    ctx: &DbContext<'_>,
    instance: Instance,
    container: ObservedContainer,
) -> Result<Located, DbError> {
    let docker = ctx.docker.clone().map_err(|message| DbError::Docker { message })?;
    let status = docker.inspect(&container.id, &container.name).await?;
    if !status.running || status.restarting {
        let log = docker.log_tail(&container.id, 20).await;
        if let Some(line) = log.iter().rev().find(|l| l.contains(INCOMPATIBLE_DATA_LOG)) {
            return Err(DbError::DataDirIncompatible { container: container.name, log_line: line.trim().to_string() });
        }
        return Err(DbError::ContainerNotRunning {
            service: instance.service.into(),
            container: container.name,
            state: if status.restarting { "restarting".into() } else { status.state },
        });
    }
    let ip = status.ip_addresses.iter().find_map(|a| a.parse().ok());
    let published = container.ports.iter().find_map(|p| published_address(p, postgres::PORT));
    Ok(Located { instance, container, ip, published })
}

/// The host address of `target` in one of Docker's port strings (`127.0.0.1:15432->5432/tcp`).
fn published_address(port: &str, target: u16) -> Option<SocketAddr> {
    let (host, container) = port.split_once("->")?;
    if container != format!("{target}/tcp") {
        return None;
    }
    let (ip, port) = host.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let ip: IpAddr = match ip.trim_matches(['[', ']']) {
        "" | "0.0.0.0" | "::" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        other => other.parse().ok()?,
    };
    Some(SocketAddr::new(ip, port))
}

/// An authenticated connection, whichever the route.
pub struct Session<'a> {
    pub route: Route,
    pub(super) service: &'static str,
    link: Link<'a>,
}

enum Link<'a> {
    Sql(postgres::sql::Connection),
    Psql { docker: &'a DockerClient, container_id: String, container_name: String, psql: Psql },
}

/// Connect to `target` as its clients do, by the first route that works from here (published port, container
/// address, docker exec), and prove the credentials with a first query.
pub async fn connect<'a>(ctx: &'a DbContext<'_>, target: &Located) -> Result<Session<'a>, DbError> {
    let creds = target.instance.credentials(ctx);
    let password = creds.password.clone().ok_or(DbError::PasswordUnset { key: target.instance.password_key })?;
    let docker = ctx.docker.clone().map_err(|message| DbError::Docker { message })?;
    let login = Login { user: creds.user.clone(), password, database: creds.database.clone() };
    let local = ctx.engine_is_local();
    let tcp = match (target.published, target.ip) {
        (Some(address), _) if local => Some((address, Route::PublishedPort { address })),
        (None, Some(ip)) if local && cfg!(target_os = "linux") => {
            let address = SocketAddr::new(ip, postgres::PORT);
            crate::net::answers(address, ROUTE_PROBE_TIMEOUT)
                .await
                .then_some((address, Route::ContainerAddress { address }))
        }
        _ => None,
    };
    let mut session = match tcp {
        Some((address, route)) => match postgres::sql::connect(address, &login, CONNECT_TIMEOUT).await {
            Ok(conn) => Session { route, service: target.instance.service, link: Link::Sql(conn) },
            Err(failure) => return Err(classify(failure, target, &creds, &route)),
        },
        None => {
            // Over TCP to the container's own address, so the password is checked as for any client (the
            // image trusts local socket connections).
            let host = target.ip.map(|ip| ip.to_string()).unwrap_or_else(|| "127.0.0.1".into());
            let route = Route::DockerExec { container: target.container.name.clone() };
            let link = Link::Psql {
                docker,
                container_id: target.container.id.clone(),
                container_name: target.container.name.clone(),
                psql: Psql::new(&host, &login, CONNECT_TIMEOUT),
            };
            Session { route, service: target.instance.service, link }
        }
    };
    if let Link::Psql { .. } = session.link
        && let Err(cause) = session.raw_rows("select 1").await
    {
        let failure = postgres::psql::connection_failure(&cause);
        return Err(classify(failure, target, &creds, &session.route));
    }
    Ok(session)
}

impl Session<'_> {
    /// Rows of `sql`, every column as text (queries cast their columns to `text`).
    pub async fn rows(&mut self, what: &'static str, sql: &str) -> Result<Vec<Vec<String>>, DbError> {
        let service = self.service;
        self.raw_rows(sql).await.map_err(|cause| DbError::Query { service: service.into(), what, cause })
    }

    async fn raw_rows(&mut self, sql: &str) -> Result<Vec<Vec<String>>, String> {
        match &mut self.link {
            Link::Sql(conn) => conn.rows(sql).await,
            Link::Psql { docker, container_id, container_name, psql } => {
                let out = docker
                    .exec_captured(container_id, container_name, &psql.argv(sql), &psql.env)
                    .await
                    .map_err(|e| e.to_string())?;
                postgres::psql::rows(out.exit_code, &out.stdout, &out.stderr)
            }
        }
    }

    /// One value: the first column of the first row.
    pub(super) async fn value(&mut self, what: &'static str, sql: &str) -> Result<String, DbError> {
        let rows = self.rows(what, sql).await?;
        Ok(rows.into_iter().next().and_then(|r| r.into_iter().next()).unwrap_or_default())
    }

    /// Say goodbye to the server (a dropped socket is logged by PostgreSQL as an unexpected EOF).
    pub async fn close(self) {
        if let Link::Sql(conn) = self.link {
            conn.close().await;
        }
    }
}

/// What a failed connection means for the operator: the SQLSTATE decides the fix.
fn classify(failure: Failure, target: &Located, creds: &Credentials, route: &Route) -> DbError {
    let service = target.instance.service.to_string();
    let container = target.container.name.clone();
    let (code, message) = match failure {
        Failure::Server { sqlstate, message } => (sqlstate, message),
        Failure::TimedOut { after_secs } => {
            return DbError::Unreachable {
                service,
                route: route.clone(),
                cause: format!("no answer within {after_secs}s"),
            };
        }
        Failure::Other(cause) => return DbError::Unreachable { service, route: route.clone(), cause },
    };
    match code.as_str() {
        "28P01" => DbError::WrongPassword {
            service,
            container,
            user: creds.user.clone(),
            key: target.instance.password_key,
            user_key: target.instance.user_key,
            route: route.clone(),
        },
        "3D000" => DbError::MissingDatabase {
            service,
            container,
            user: creds.user.clone(),
            database: creds.database.clone(),
            key: target.instance.database_key,
            route: route.clone(),
        },
        "28000" => DbError::Rejected {
            service,
            user: creds.user.clone(),
            key: target.instance.user_key,
            cause: message.trim_start_matches("FATAL:").trim().to_string(),
            route: route.clone(),
        },
        "57P03" => DbError::NotReady { service },
        _ => DbError::Unreachable { service, route: route.clone(), cause: format!("{message} (SQLSTATE {code})") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_address_finds_the_postgres_port() {
        let addr = |s: &str| published_address(s, 5432).map(|a| a.to_string());
        assert_eq!(addr("127.0.0.1:15432->5432/tcp").as_deref(), Some("127.0.0.1:15432"));
        assert_eq!(addr("0.0.0.0:5432->5432/tcp").as_deref(), Some("127.0.0.1:5432"));
        assert_eq!(addr(":::5432->5432/tcp").as_deref(), Some("127.0.0.1:5432"));
        assert_eq!(addr("127.0.0.1:6379->6379/tcp"), None);
        assert_eq!(addr("127.0.0.1:5432->5432/udp"), None);
    }
}
