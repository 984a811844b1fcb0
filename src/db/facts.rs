//! The facts: version, image, data directory, extensions, connections, replication. Read-only queries.

use std::net::IpAddr;

use serde::Serialize;

use super::{
    DB_POSTGRES_REPLICA, DbContext, DbError, Located, Route, Session, connect, containers_of, locate_container,
};

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
    let major = crate::postgres::major_of(&field(2)).ok_or_else(|| DbError::Query {
        service: session.service.into(),
        what: "version",
        cause: format!("server_version_num is `{}`", field(2)),
    })?;
    // Distribution builds append their package version: `15.18 (Debian 15.18-0+deb12u1)`.
    let server_version = field(1).split_whitespace().next().unwrap_or_default().to_string();
    Ok(ServerVersion { version: field(0), server_version, major })
}

/// The image the instance runs, and the PostgreSQL major its tag names.
#[derive(Debug, Clone, Serialize)]
pub struct ImageVersion {
    pub image: String,
    pub major: Option<u32>,
}

/// The image of the running container when Docker still knows it by name, else the one the stack would run.
pub fn image_of(ctx: &DbContext<'_>, target: &Located) -> ImageVersion {
    let image = if target.container.image.starts_with("sha256:") || target.container.image.is_empty() {
        ctx.stack
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
pub async fn data_dir(ctx: &DbContext<'_>, target: &Located) -> Result<DataDir, DbError> {
    let docker = ctx.docker.clone().map_err(|message| DbError::Docker { message })?;
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
pub async fn replication(ctx: &DbContext<'_>, primary: &mut Session<'_>) -> Result<Replication, DbError> {
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
}
