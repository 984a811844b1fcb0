//! The whole report of `ragctl db check`: every fact of every instance, and the findings.

use serde::Serialize;

use super::{
    Connections, DB_POSTGRES, DataDir, DbContext, DbError, Extensions, Finding, ImageVersion, Instance, Level,
    MIN_MAJOR, PGVECTOR, Replication, Route, ServerVersion, assess_connections, assess_data_dir, assess_extensions,
    assess_replication, assess_version, connect, connections, data_dir, extensions, image_of, locate, replication,
    server_version,
};

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
pub async fn check(ctx: &DbContext<'_>) -> DbReport {
    let pgvector = async {
        if ctx.service_enabled(PGVECTOR.service) { Some(inspect_instance(ctx, PGVECTOR).await) } else { None }
    };
    let (postgres, pgvector) = tokio::join!(inspect_instance(ctx, DB_POSTGRES), pgvector);
    let mut report = DbReport { ok: false, postgres, pgvector };
    let ok = report.findings().all(|f| f.level != Level::Fail);
    report.ok = ok;
    report
}

async fn inspect_instance(ctx: &DbContext<'_>, instance: Instance) -> InstanceReport {
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
