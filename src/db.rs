//! The stack's PostgreSQL, inspected read-only: the route that reaches it, its version against the image's, the
//! data directory's `PG_VERSION`, extensions, connections in use, and streaming replication (pg_cluster).
//! `ragctl db check` reports all of it ([`check`]); each `postgres.*` doctor check asks for its own part.
//!
//! Two ways to talk to the server hide behind one [`Session`] that returns rows of text, so every query is written
//! once: sqlx over TCP when the host can reach the server (the published port, or the container's address on a
//! local Linux engine), otherwise `psql` inside the container through Docker exec (the host cannot route to the
//! network, e.g. a remote engine). Every query casts its columns to `text` for that reason.
//!
//! It must not change anything: no DDL, no settings, no writes to the data directory.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{ConnectOptions, Connection, Row};

use crate::docker::{DockerClient, ObservedContainer};
use crate::doctor::DoctorContext;

/// The oldest PostgreSQL major the stack supports.
pub const MIN_MAJOR: u32 = 14;
const PG_PORT: u16 = 5432;
/// Connect and authenticate, per attempt: a healthy server on a local network answers in milliseconds.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Whether the host can route to a container address at all (it cannot on Docker Desktop or a remote engine).
const ROUTE_PROBE_TIMEOUT: Duration = Duration::from_millis(300);
/// psql's own field separator in the exec route: a control character no value of ours contains.
const FIELD_SEPARATOR: &str = "\x1f";
/// What the server logs when the data directory belongs to another major: the container then exits at once.
const INCOMPATIBLE_DATA_LOG: &str = "database files are incompatible with server";

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
    pub fn credentials(&self, ctx: &DoctorContext) -> Credentials {
        Credentials {
            user: ctx.value(self.user_key).unwrap_or_else(|| self.default_user.to_string()),
            password: ctx.value(self.password_key),
            database: ctx.value(self.database_key).unwrap_or_else(|| self.default_database.to_string()),
        }
    }
}

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

const DATA_DIR_HINT: &str = "the data volume was initialised by another PostgreSQL major: upgrade it (pg_upgrade, or \
    pg_dumpall with the old image and restore with the new one), pin the image of that major, or, if the data is \
    disposable, `ragctl down --volumes` and `ragctl up`";

impl From<crate::error::Error> for DbError {
    fn from(e: crate::error::Error) -> Self {
        DbError::Docker { message: e.to_string() }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Finding the container and the route

/// The running container of an instance, with what routing needs.
#[derive(Debug, Clone)]
pub struct Located {
    pub instance: Instance,
    pub container: ObservedContainer,
    pub ip: Option<IpAddr>,
    pub published: Option<SocketAddr>,
}

/// The instance's containers (one, or N replicas), as Docker lists them.
pub async fn containers_of(ctx: &DoctorContext, instance: Instance) -> Result<Vec<ObservedContainer>, DbError> {
    let all = ctx.containers().await.map_err(|message| DbError::Docker { message })?;
    Ok(all.iter().filter(|c| c.service == instance.service).cloned().collect())
}

/// The instance's first container, which must be running.
pub async fn locate(ctx: &DoctorContext, instance: Instance) -> Result<Located, DbError> {
    let container = containers_of(ctx, instance).await?.into_iter().next().ok_or_else(|| {
        DbError::ContainerMissing { service: instance.service.into(), project: ctx.settings.project_name.clone() }
    })?;
    locate_container(ctx, instance, container).await
}

/// `container` with its address, if it runs; otherwise why not (from its log when the data directory is the cause).
pub async fn locate_container(
    ctx: &DoctorContext,
    instance: Instance,
    container: ObservedContainer,
) -> Result<Located, DbError> {
    let docker = ctx.docker().await.map_err(|message| DbError::Docker { message })?;
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
    let published = container.ports.iter().find_map(|p| published_address(p, PG_PORT));
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

/// Whether the engine runs on this machine (a unix socket): only then are its published ports and container
/// addresses reachable from here.
fn engine_is_local(ctx: &DoctorContext) -> bool {
    ctx.settings.docker_host.as_deref().is_none_or(|h| h.starts_with("unix://") || h.starts_with('/'))
}

async fn answers(address: SocketAddr) -> bool {
    matches!(tokio::time::timeout(ROUTE_PROBE_TIMEOUT, tokio::net::TcpStream::connect(address)).await, Ok(Ok(_)))
}

// ---------------------------------------------------------------------------------------------------------------
// Sessions

/// An authenticated connection, whichever the route.
pub struct Session<'a> {
    pub route: Route,
    service: &'static str,
    link: Link<'a>,
}

enum Link<'a> {
    Sql(Box<PgConnection>),
    Psql { docker: &'a DockerClient, container_id: String, container_name: String, argv: Vec<String>, env: Vec<String> },
}

/// Connect to `target` as its clients do, by the first route that works from here (published port, container
/// address, docker exec), and prove the credentials with a first query.
pub async fn connect<'a>(ctx: &'a DoctorContext, target: &Located) -> Result<Session<'a>, DbError> {
    let creds = target.instance.credentials(ctx);
    let password = creds.password.clone().ok_or(DbError::PasswordUnset { key: target.instance.password_key })?;
    let docker = ctx.docker().await.map_err(|message| DbError::Docker { message })?;
    let local = engine_is_local(ctx);
    let tcp = match (target.published, target.ip) {
        (Some(address), _) if local => Some((address, Route::PublishedPort { address })),
        (None, Some(ip)) if local && cfg!(target_os = "linux") => {
            let address = SocketAddr::new(ip, PG_PORT);
            answers(address).await.then_some((address, Route::ContainerAddress { address }))
        }
        _ => None,
    };
    let mut session = match tcp {
        Some((address, route)) => {
            let options = PgConnectOptions::new_without_pgpass()
                .host(&address.ip().to_string())
                .port(address.port())
                .username(&creds.user)
                .password(&password)
                .database(&creds.database)
                .ssl_mode(PgSslMode::Disable)
                .application_name("ragctl");
            let conn = match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return Err(classify_sqlx(&e, target, &creds, &route)),
                Err(_) => {
                    return Err(DbError::Unreachable {
                        service: target.instance.service.into(),
                        route,
                        cause: format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
                    });
                }
            };
            Session { route, service: target.instance.service, link: Link::Sql(Box::new(conn)) }
        }
        None => {
            // Over TCP to the container's own address, so the password is checked as for any client (the
            // image trusts local socket connections).
            let host = target.ip.map(|ip| ip.to_string()).unwrap_or_else(|| "127.0.0.1".into());
            let argv = [
                "psql",
                "-X",
                "-q",
                "-A",
                "-t",
                "-F",
                FIELD_SEPARATOR,
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                &host,
                "-p",
                "5432",
                "-U",
                &creds.user,
                "-d",
                &creds.database,
                "-c",
            ]
            .map(str::to_string)
            .to_vec();
            let env = vec![
                format!("PGPASSWORD={password}"),
                format!("PGCONNECT_TIMEOUT={}", CONNECT_TIMEOUT.as_secs()),
                "PGAPPNAME=ragctl".into(),
                "LC_MESSAGES=C".into(),
            ];
            let route = Route::DockerExec { container: target.container.name.clone() };
            let link = Link::Psql {
                docker,
                container_id: target.container.id.clone(),
                container_name: target.container.name.clone(),
                argv,
                env,
            };
            Session { route, service: target.instance.service, link }
        }
    };
    if let Link::Psql { .. } = session.link
        && let Err(cause) = session.raw_rows("select 1").await
    {
        return Err(classify_psql(&cause, target, &creds, &session.route));
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
            Link::Sql(conn) => {
                let rows = sqlx::query(sql).fetch_all(conn.as_mut()).await.map_err(|e| e.to_string())?;
                rows.iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| row.try_get::<Option<String>, _>(i).map(Option::unwrap_or_default))
                            .collect::<Result<Vec<String>, _>>()
                            .map_err(|e| e.to_string())
                    })
                    .collect()
            }
            Link::Psql { docker, container_id, container_name, argv, env } => {
                let mut cmd = argv.clone();
                cmd.push(sql.to_string());
                let out =
                    docker.exec_captured(container_id, container_name, &cmd, env).await.map_err(|e| e.to_string())?;
                if out.exit_code != 0 {
                    let stderr = out.stderr.trim();
                    return Err(if stderr.is_empty() {
                        format!("psql exited {}", out.exit_code)
                    } else {
                        stderr.into()
                    });
                }
                Ok(out.stdout.lines().map(|l| l.split(FIELD_SEPARATOR).map(str::to_string).collect()).collect())
            }
        }
    }

    /// One value: the first column of the first row.
    async fn value(&mut self, what: &'static str, sql: &str) -> Result<String, DbError> {
        let rows = self.rows(what, sql).await?;
        Ok(rows.into_iter().next().and_then(|r| r.into_iter().next()).unwrap_or_default())
    }

    /// Say goodbye to the server (a dropped socket is logged by PostgreSQL as an unexpected EOF).
    pub async fn close(self) {
        if let Link::Sql(conn) = self.link {
            let _ = conn.close().await;
        }
    }
}

fn classify_sqlx(err: &sqlx::Error, target: &Located, creds: &Credentials, route: &Route) -> DbError {
    let service = target.instance.service.to_string();
    match err {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            classify_code(&code, db.message(), target, creds, route)
        }
        other => DbError::Unreachable { service, route: route.clone(), cause: other.to_string() },
    }
}

/// psql does not print SQLSTATE codes on connection failures; its messages are stable (LC_MESSAGES=C).
fn classify_psql(stderr: &str, target: &Located, creds: &Credentials, route: &Route) -> DbError {
    let code = if stderr.contains("password authentication failed") {
        "28P01"
    } else if stderr.contains("database \"") && stderr.contains("does not exist") {
        "3D000"
    } else if stderr.contains("role \"") && stderr.contains("does not exist") || stderr.contains("no pg_hba.conf entry")
    {
        "28000"
    } else if stderr.contains("starting up") || stderr.contains("shutting down") || stderr.contains("in recovery mode")
    {
        "57P03"
    } else {
        return DbError::Unreachable {
            service: target.instance.service.into(),
            route: route.clone(),
            cause: last_line(stderr),
        };
    };
    classify_code(code, &last_line(stderr), target, creds, route)
}

fn classify_code(code: &str, message: &str, target: &Located, creds: &Credentials, route: &Route) -> DbError {
    let service = target.instance.service.to_string();
    let container = target.container.name.clone();
    match code {
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

fn last_line(text: &str) -> String {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().trim().replace("psql: error: ", "")
}

// ---------------------------------------------------------------------------------------------------------------
// Facts

#[derive(Debug, Clone, Serialize)]
pub struct ServerVersion {
    /// `SELECT version()`.
    pub version: String,
    /// `server_version` (`15.18`).
    pub server_version: String,
    pub major: u32,
}

pub async fn server_version(session: &mut Session<'_>) -> Result<ServerVersion, DbError> {
    let rows = session
        .rows("version", "select version(), current_setting('server_version'), current_setting('server_version_num')")
        .await?;
    let row = rows.into_iter().next().unwrap_or_default();
    let field = |i: usize| row.get(i).cloned().unwrap_or_default();
    let num: u32 = field(2).trim().parse().map_err(|_| DbError::Query {
        service: session.service.into(),
        what: "version",
        cause: format!("server_version_num is `{}`", field(2)),
    })?;
    // Distribution builds append their package version: `15.18 (Debian 15.18-0+deb12u1)`.
    let server_version = field(1).split_whitespace().next().unwrap_or_default().to_string();
    Ok(ServerVersion { version: field(0), server_version, major: num / 10000 })
}

/// The image the instance runs, and the PostgreSQL major its tag names.
#[derive(Debug, Clone, Serialize)]
pub struct ImageVersion {
    pub image: String,
    pub major: Option<u32>,
}

/// The image of the running container when Docker still knows it by name, else the one the stack would run.
pub fn image_of(ctx: &DoctorContext, target: &Located) -> ImageVersion {
    let image = if target.container.image.starts_with("sha256:") || target.container.image.is_empty() {
        ctx.stack
            .as_ref()
            .ok()
            .and_then(|s| s.services.get(target.instance.service))
            .map(|s| s.image.clone())
            .unwrap_or_else(|| target.container.image.clone())
    } else {
        target.container.image.clone()
    };
    ImageVersion { major: image_major(&image), image }
}

/// The PostgreSQL major an image tag names: `postgres:15-alpine` → 15, `pgvector/pgvector:pg16` → 16,
/// `postgres:latest` → none.
pub fn image_major(image: &str) -> Option<u32> {
    let image = image.split('@').next().unwrap_or(image);
    let name_end = image.rfind('/').map_or(0, |i| i + 1);
    let tag = image[name_end..].split_once(':')?.1;
    let digits: String = tag.chars().skip_while(|c| !c.is_ascii_digit()).take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The data directory and the major that initialised it.
#[derive(Debug, Clone, Serialize)]
pub struct DataDir {
    pub path: String,
    /// `None` when there is no `PG_VERSION` (an empty or unmounted data directory).
    pub pg_version: Option<u32>,
}

/// Read `$PGDATA/PG_VERSION` inside the container.
pub async fn data_dir(ctx: &DoctorContext, target: &Located) -> Result<DataDir, DbError> {
    let docker = ctx.docker().await.map_err(|message| DbError::Docker { message })?;
    let script = r#"d="${PGDATA:-/var/lib/postgresql/data}"; echo "$d"; cat "$d/PG_VERSION" 2>/dev/null || true"#;
    let cmd = ["sh", "-c", script].map(str::to_string);
    let out = docker.exec_captured(&target.container.id, &target.container.name, &cmd, &[]).await?;
    let mut lines = out.stdout.lines();
    let path = lines.next().unwrap_or_default().trim().to_string();
    let pg_version = lines.next().and_then(|v| v.trim().split('.').next().and_then(|m| m.parse().ok()));
    Ok(DataDir { path, pg_version })
}

#[derive(Debug, Clone, Serialize)]
pub struct Extension {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Extensions {
    pub installed: Vec<Extension>,
    /// Required extensions not created in the database but available to `CREATE EXTENSION`.
    pub available: Vec<String>,
    /// Required extensions the server does not have at all.
    pub missing: Vec<String>,
}

pub async fn extensions(session: &mut Session<'_>, required: &[&str]) -> Result<Extensions, DbError> {
    let installed: Vec<Extension> = session
        .rows("extensions", "select extname::text, extversion::text from pg_extension order by 1")
        .await?
        .into_iter()
        .map(|r| Extension {
            name: r.first().cloned().unwrap_or_default(),
            version: r.get(1).cloned().unwrap_or_default(),
        })
        .collect();
    let wanted: Vec<&str> = required.iter().copied().filter(|r| !installed.iter().any(|e| e.name == *r)).collect();
    let mut available = Vec::new();
    if !wanted.is_empty() {
        // The names are ours (constants), never user input.
        let list = wanted.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(", ");
        let sql = format!("select name::text from pg_available_extensions where name in ({list})");
        available = session
            .rows("available extensions", &sql)
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .collect();
    }
    let missing = wanted.iter().filter(|w| !available.iter().any(|a| a == *w)).map(|w| w.to_string()).collect();
    Ok(Extensions { installed, available, missing })
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Connections {
    /// Client backends (what counts against max_connections).
    pub in_use: u64,
    pub max: u64,
}

impl Connections {
    /// Share of max_connections in use, rounded down (100 when max_connections is 0).
    pub fn percent(&self) -> u64 {
        (self.in_use * 100).checked_div(self.max).unwrap_or(100)
    }
}

pub async fn connections(session: &mut Session<'_>) -> Result<Connections, DbError> {
    let sql = "select count(*)::text, current_setting('max_connections') from pg_stat_activity \
               where backend_type = 'client backend'";
    let row = session.rows("connections", sql).await?.into_iter().next().unwrap_or_default();
    let num = |i: usize| row.get(i).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
    Ok(Connections { in_use: num(0), max: num(1) })
}

/// One standby as the primary sees it (`pg_stat_replication`).
#[derive(Debug, Clone, Serialize)]
pub struct Standby {
    pub client_addr: String,
    pub application_name: String,
    pub state: String,
    pub replay_lag_bytes: Option<i64>,
    pub replay_lag_seconds: Option<f64>,
}

pub async fn standbys(session: &mut Session<'_>) -> Result<Vec<Standby>, DbError> {
    let sql = "select coalesce(host(client_addr), ''), application_name::text, coalesce(state, ''), \
               coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint::text, ''), \
               coalesce(extract(epoch from replay_lag)::text, '') from pg_stat_replication order by 1";
    Ok(session
        .rows("pg_stat_replication", sql)
        .await?
        .into_iter()
        .map(|r| {
            let field = |i: usize| r.get(i).cloned().unwrap_or_default();
            Standby {
                client_addr: field(0),
                application_name: field(1),
                state: field(2),
                replay_lag_bytes: field(3).parse().ok(),
                replay_lag_seconds: field(4).parse().ok(),
            }
        })
        .collect())
}

/// One replica container: in recovery (asked of it) and streaming (seen by the primary).
#[derive(Debug, Clone, Serialize)]
pub struct Replica {
    pub container: String,
    pub route: Option<Route>,
    pub in_recovery: Option<bool>,
    /// The primary's `pg_stat_replication` row for this replica's address, if any.
    pub standby: Option<Standby>,
    pub error: Option<DbError>,
}

impl Replica {
    pub fn streaming(&self) -> bool {
        self.standby.as_ref().is_some_and(|s| s.state == "streaming")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Replication {
    pub replicas: Vec<Replica>,
    /// Standbys connected to the primary that are none of the project's replica containers.
    pub other_standbys: Vec<Standby>,
}

/// Every replica container of pg_cluster, each asked whether it is in recovery and matched (by address) with the
/// primary's view of its stream.
pub async fn replication(ctx: &DoctorContext, primary: &mut Session<'_>) -> Result<Replication, DbError> {
    let mut standbys = standbys(primary).await?;
    let containers = containers_of(ctx, DB_POSTGRES_REPLICA).await?;
    let checks = containers.into_iter().map(|c| async move {
        let name = c.name.clone();
        let target = match locate_container(ctx, DB_POSTGRES_REPLICA, c).await {
            Ok(t) => t,
            Err(e) => return (name, None, None, None, Err(e)),
        };
        let ip = target.ip;
        let result = async {
            let mut session = connect(ctx, &target).await?;
            let route = session.route.clone();
            let recovery = session.value("pg_is_in_recovery", "select pg_is_in_recovery()::text").await;
            session.close().await;
            Ok::<_, DbError>((route, recovery?))
        }
        .await;
        match result {
            Ok((route, recovery)) => (name, ip, Some(route), Some(recovery == "true"), Ok(())),
            Err(e) => (name, ip, None, None, Err(e)),
        }
    });
    let mut replicas = Vec::new();
    for (container, ip, route, in_recovery, result) in futures_util::future::join_all(checks).await {
        let standby = ip.and_then(|ip| {
            let i = standbys.iter().position(|s| s.client_addr.parse::<IpAddr>().is_ok_and(|a| a == ip))?;
            Some(standbys.remove(i))
        });
        replicas.push(Replica { container, route, in_recovery, standby, error: result.err() });
    }
    Ok(Replication { replicas, other_standbys: standbys })
}

// ---------------------------------------------------------------------------------------------------------------
// Assessments: pure, shared by `db check` and doctor

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Pass,
    Warn,
    Fail,
}

/// What one fact means, under the doctor check id that owns it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub level: Level,
    pub detail: String,
    pub hint: Option<String>,
}

impl Finding {
    fn pass(check: &'static str, detail: String) -> Finding {
        Finding { check, level: Level::Pass, detail, hint: None }
    }
    fn warn(check: &'static str, detail: String, hint: String) -> Finding {
        Finding { check, level: Level::Warn, detail, hint: Some(hint) }
    }
    fn fail(check: &'static str, detail: String, hint: String) -> Finding {
        Finding { check, level: Level::Fail, detail, hint: Some(hint) }
    }
    pub fn error(check: &'static str, e: &DbError) -> Finding {
        Finding::fail(check, e.to_string(), e.hint())
    }
}

pub fn assess_version(service: &str, server: &ServerVersion, image: &ImageVersion) -> Finding {
    let id = "postgres.version";
    let head = format!("PostgreSQL {} (major {}, image {}", server.server_version, server.major, image.image);
    if server.major < MIN_MAJOR {
        return Finding::fail(
            id,
            format!("{head} → not supported: the stack needs PostgreSQL {MIN_MAJOR} or newer)"),
            format!("run a supported image for `{service}` (the profile's default, or `images:` in ragctl.yaml)"),
        );
    }
    match image.major {
        Some(m) if m != server.major => Finding::fail(
            id,
            format!("{head} → not supported: the server is major {} but the image names {m})", server.major),
            format!("the container does not run the image the stack expects: `ragctl up` recreates `{service}`"),
        ),
        Some(_) => Finding::pass(id, format!("{head} → supported)")),
        None => Finding::pass(id, format!("{head} → supported; the image tag names no major)")),
    }
}

pub fn assess_data_dir(dir: &DataDir, image: &ImageVersion) -> Finding {
    let id = "postgres.data_dir";
    match (dir.pg_version, image.major) {
        (None, _) => Finding::fail(
            id,
            format!("`{}/PG_VERSION` does not exist: the data directory is not initialised", dir.path),
            "PGDATA must point into the data volume; `ragctl logs db_postgres` shows what the server did".into(),
        ),
        (Some(v), Some(m)) if v != m => Finding::fail(
            id,
            format!(
                "`{}` was initialised by PostgreSQL {v} but the image `{}` runs PostgreSQL {m} (\"{INCOMPATIBLE_DATA_LOG}\")",
                dir.path, image.image
            ),
            DATA_DIR_HINT.into(),
        ),
        (Some(v), Some(_)) => Finding::pass(id, format!("`{}`: PG_VERSION {v}, matches the image", dir.path)),
        (Some(v), None) => Finding::pass(id, format!("`{}`: PG_VERSION {v} (the image tag names no major)", dir.path)),
    }
}

pub fn assess_connections(c: &Connections) -> Finding {
    let id = "postgres.connections";
    let percent = c.percent();
    let detail = format!("{} of {} connections in use ({percent} %)", c.in_use, c.max);
    let hint = || {
        "raise POSTGRES_MAX_CONNECTIONS in .env and run `ragctl up`, or find the client that leaks connections \
         (`select application_name, client_addr, count(*) from pg_stat_activity group by 1, 2`)"
            .to_string()
    };
    if c.in_use >= c.max {
        Finding::fail(id, detail, hint())
    } else if c.in_use * 100 > c.max * 90 {
        Finding::warn(id, detail, hint())
    } else {
        Finding::pass(id, detail)
    }
}

pub fn assess_extensions(service: &str, e: &Extensions) -> Finding {
    let id = "pgvector.extension";
    let installed = e.installed.iter().map(|x| format!("{} {}", x.name, x.version)).collect::<Vec<_>>().join(", ");
    if !e.missing.is_empty() {
        return Finding::fail(
            id,
            format!("`{service}` does not have the extension `{}` (installed: {installed})", e.missing.join("`, `")),
            format!("run an image that ships it for `{service}` (the pgvector profile's `pgvector/pgvector:pg16`)"),
        );
    }
    let mut detail = format!("extensions: {installed}");
    if !e.available.is_empty() {
        detail.push_str(&format!("; {} available, created by the API on first use", e.available.join(", ")));
    }
    Finding::pass(id, detail)
}

pub fn assess_replication(r: &Replication) -> Finding {
    let id = "postgres.replication";
    if r.replicas.is_empty() {
        return Finding::fail(
            id,
            "pg_cluster is enabled but no `db_postgres_replica` container exists".into(),
            "run `ragctl up`".into(),
        );
    }
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    for replica in &r.replicas {
        lines.push(format!("{}: {}", replica.container, describe_replica(replica)));
        if let Some(e) = &replica.error {
            problems.push(e.hint());
        } else if replica.in_recovery != Some(true) {
            problems.push(format!(
                "`{}` is not in recovery (promoted, or never cloned): remove it and run `ragctl up` to re-clone it",
                replica.container
            ));
        } else if !replica.streaming() {
            problems.push(
                "the primary sees no streaming standby from it: `ragctl logs db_postgres_replica` shows the WAL \
                 receiver's error (wrong PG_REPLICATION_PASSWORD, or the `replicator` role or pg_hba line missing \
                 on an existing data volume)"
                    .to_string(),
            );
        }
    }
    let streaming = r.replicas.iter().filter(|x| x.streaming() && x.in_recovery == Some(true)).count();
    let detail = format!("{streaming} of {} replicas streaming\n{}", r.replicas.len(), lines.join("\n"));
    if problems.is_empty() {
        Finding::pass(id, detail)
    } else {
        problems.dedup();
        Finding::fail(id, detail, problems.join("; "))
    }
}

fn describe_replica(r: &Replica) -> String {
    if let Some(e) = &r.error {
        return e.to_string();
    }
    let recovery = match r.in_recovery {
        Some(true) => "in recovery",
        Some(false) => "NOT in recovery",
        None => "recovery unknown",
    };
    match &r.standby {
        Some(s) => format!(
            "{}, {recovery}, replay lag {} bytes, {}",
            s.state,
            s.replay_lag_bytes.map_or("?".into(), |b| b.to_string()),
            s.replay_lag_seconds.map_or("no lag measured yet".into(), |secs| format!("{secs:.3} s"))
        ),
        None => format!("not streaming (no pg_stat_replication row from its address), {recovery}"),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The whole report (`ragctl db check`)

/// Everything about one PostgreSQL instance; `error` when it could not be reached.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceReport {
    pub service: &'static str,
    pub container: Option<String>,
    pub route: Option<Route>,
    pub server: Option<ServerVersion>,
    pub image: Option<ImageVersion>,
    pub min_major: u32,
    pub data_dir: Option<DataDir>,
    pub extensions: Option<Extensions>,
    pub connections: Option<Connections>,
    pub replication: Option<Replication>,
    pub error: Option<DbError>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DbReport {
    /// No finding failed (warnings allowed).
    pub ok: bool,
    pub postgres: InstanceReport,
    /// With the pgvector profile: the vector store's PostgreSQL.
    pub pgvector: Option<InstanceReport>,
}

impl DbReport {
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.postgres.findings.iter().chain(self.pgvector.iter().flat_map(|p| p.findings.iter()))
    }
}

/// Inspect db_postgres (with its replicas under pg_cluster) and pgvector when enabled.
pub async fn check(ctx: &DoctorContext) -> DbReport {
    let pgvector = async {
        if ctx.service_enabled(PGVECTOR.service) { Some(inspect_instance(ctx, PGVECTOR).await) } else { None }
    };
    let (postgres, pgvector) = tokio::join!(inspect_instance(ctx, DB_POSTGRES), pgvector);
    let mut report = DbReport { ok: false, postgres, pgvector };
    let ok = report.findings().all(|f| f.level != Level::Fail);
    report.ok = ok;
    report
}

async fn inspect_instance(ctx: &DoctorContext, instance: Instance) -> InstanceReport {
    let version_check = if instance.service == PGVECTOR.service { "pgvector.extension" } else { "postgres.version" };
    let mut report = InstanceReport {
        service: instance.service,
        container: None,
        route: None,
        server: None,
        image: None,
        min_major: MIN_MAJOR,
        data_dir: None,
        extensions: None,
        connections: None,
        replication: None,
        error: None,
        findings: Vec::new(),
    };
    let target = match locate(ctx, instance).await {
        Ok(t) => t,
        Err(e) => {
            let check =
                if matches!(e, DbError::DataDirIncompatible { .. }) { "postgres.data_dir" } else { version_check };
            report.findings.push(Finding::error(check, &e));
            report.error = Some(e);
            return report;
        }
    };
    report.container = Some(target.container.name.clone());
    let image = image_of(ctx, &target);
    // The data directory is read through Docker, whether or not SQL gets through.
    let (session, dir) = tokio::join!(connect(ctx, &target), data_dir(ctx, &target));
    match dir {
        Ok(dir) => {
            report.findings.push(assess_data_dir(&dir, &image));
            report.data_dir = Some(dir);
        }
        Err(e) => report.findings.push(Finding::error("postgres.data_dir", &e)),
    }
    report.image = Some(image.clone());
    let mut session = match session {
        Ok(s) => s,
        Err(e) => {
            report.route = e.route().cloned();
            report.findings.insert(0, Finding::error(version_check, &e));
            report.error = Some(e);
            return report;
        }
    };
    report.route = Some(session.route.clone());
    let facts = async {
        let server = server_version(&mut session).await?;
        let mut version = assess_version(instance.service, &server, &image);
        version.check = version_check;
        report.findings.insert(0, version);
        report.server = Some(server);
        let ext = extensions(&mut session, instance.required_extensions).await?;
        if !instance.required_extensions.is_empty() {
            report.findings.push(assess_extensions(instance.service, &ext));
        }
        report.extensions = Some(ext);
        let conn = connections(&mut session).await?;
        report.findings.push(assess_connections(&conn));
        report.connections = Some(conn);
        if instance.service == DB_POSTGRES.service && ctx.profile_enabled("pg_cluster") {
            let replication = replication(ctx, &mut session).await?;
            report.findings.push(assess_replication(&replication));
            report.replication = Some(replication);
        }
        Ok::<_, DbError>(())
    }
    .await;
    if let Err(e) = facts {
        report.findings.push(Finding::error(version_check, &e));
        report.error = Some(e);
    }
    session.close().await;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_major_reads_the_tag() {
        assert_eq!(image_major("postgres:15-alpine"), Some(15));
        assert_eq!(image_major("ragctl-test/postgres:15"), Some(15));
        assert_eq!(image_major("pgvector/pgvector:pg16"), Some(16));
        assert_eq!(image_major("mirror:5000/library/postgres:16.2-bookworm"), Some(16));
        assert_eq!(image_major("mirror:5000/postgres"), None, "a registry port is not a tag");
        assert_eq!(image_major("postgres:latest"), None);
        assert_eq!(image_major("postgres:15@sha256:abc123"), Some(15));
    }

    #[test]
    fn published_address_finds_the_postgres_port() {
        let addr = |s: &str| published_address(s, 5432).map(|a| a.to_string());
        assert_eq!(addr("127.0.0.1:15432->5432/tcp").as_deref(), Some("127.0.0.1:15432"));
        assert_eq!(addr("0.0.0.0:5432->5432/tcp").as_deref(), Some("127.0.0.1:5432"));
        assert_eq!(addr(":::5432->5432/tcp").as_deref(), Some("127.0.0.1:5432"));
        assert_eq!(addr("127.0.0.1:6379->6379/tcp"), None);
        assert_eq!(addr("127.0.0.1:5432->5432/udp"), None);
    }

    fn version(major: u32) -> ServerVersion {
        ServerVersion {
            version: format!("PostgreSQL {major}.3 on x86_64"),
            server_version: format!("{major}.3"),
            major,
        }
    }

    fn image(image: &str) -> ImageVersion {
        ImageVersion { image: image.into(), major: image_major(image) }
    }

    #[test]
    fn version_must_be_supported_and_the_images_major() {
        let ok = assess_version("db_postgres", &version(15), &image("postgres:15-alpine"));
        assert_eq!(
            (ok.level, ok.detail.as_str()),
            (Level::Pass, "PostgreSQL 15.3 (major 15, image postgres:15-alpine → supported)")
        );
        let other = assess_version("db_postgres", &version(16), &image("postgres:15-alpine"));
        assert_eq!(other.level, Level::Fail);
        assert!(other.detail.contains("server is major 16 but the image names 15"), "{}", other.detail);
        let old = assess_version("db_postgres", &version(13), &image("postgres:13"));
        assert_eq!(old.level, Level::Fail);
        assert!(old.detail.contains("14 or newer"), "{}", old.detail);
        assert_eq!(assess_version("db_postgres", &version(16), &image("postgres:latest")).level, Level::Pass);
    }

    #[test]
    fn data_dir_of_another_major_fails_with_the_upgrade_hint() {
        let dir = |v| DataDir { path: "/var/lib/postgresql/data/pgdata".into(), pg_version: v };
        assert_eq!(assess_data_dir(&dir(Some(15)), &image("postgres:15-alpine")).level, Level::Pass);
        let bad = assess_data_dir(&dir(Some(14)), &image("postgres:15-alpine"));
        assert_eq!(bad.level, Level::Fail);
        assert!(
            bad.detail.contains("initialised by PostgreSQL 14 but the image `postgres:15-alpine` runs PostgreSQL 15")
        );
        assert!(bad.hint.as_deref().is_some_and(|h| h.contains("pg_upgrade") && h.contains("ragctl down --volumes")));
        assert_eq!(assess_data_dir(&dir(None), &image("postgres:15")).level, Level::Fail);
    }

    #[test]
    fn connections_warn_above_90_percent_and_fail_when_full() {
        let level = |in_use, max| assess_connections(&Connections { in_use, max }).level;
        assert_eq!(level(6, 100), Level::Pass);
        assert_eq!(level(90, 100), Level::Pass);
        assert_eq!(level(91, 100), Level::Warn);
        assert_eq!(level(100, 100), Level::Fail);
        assert_eq!(level(0, 0), Level::Fail);
        let warn = assess_connections(&Connections { in_use: 95, max: 100 });
        assert_eq!(warn.detail, "95 of 100 connections in use (95 %)");
        assert!(warn.hint.as_deref().is_some_and(|h| h.contains("POSTGRES_MAX_CONNECTIONS")));
    }

    fn replica(in_recovery: Option<bool>, state: Option<&str>) -> Replica {
        Replica {
            container: "p-db_postgres_replica-1".into(),
            route: None,
            in_recovery,
            standby: state.map(|s| Standby {
                client_addr: "172.18.0.4".into(),
                application_name: "walreceiver".into(),
                state: s.into(),
                replay_lag_bytes: Some(0),
                replay_lag_seconds: None,
            }),
            error: None,
        }
    }

    #[test]
    fn replication_needs_every_replica_streaming_and_in_recovery() {
        let r = |replicas| assess_replication(&Replication { replicas, other_standbys: vec![] });
        let ok = r(vec![replica(Some(true), Some("streaming"))]);
        assert_eq!(ok.level, Level::Pass, "{}", ok.detail);
        assert!(ok.detail.starts_with(
            "1 of 1 replicas streaming\np-db_postgres_replica-1: streaming, in recovery, replay lag 0 bytes"
        ));
        assert_eq!(r(vec![replica(Some(true), Some("catchup"))]).level, Level::Fail);
        assert_eq!(r(vec![replica(Some(true), None)]).level, Level::Fail);
        assert_eq!(r(vec![replica(Some(false), Some("streaming"))]).level, Level::Fail);
        assert_eq!(r(vec![]).level, Level::Fail);
    }

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
