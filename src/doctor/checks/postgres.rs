//! PostgreSQL checks: reachable with the `.env` credentials and running the image's major, a data directory of
//! that major, connection headroom, streaming replication (pg_cluster), the `vector` extension (pgvector).
//! The facts and their meaning come from [`crate::db`], which `ragctl db check` reports in full; each check
//! asks only for its part, so one failure does not hide the others.

use std::time::Duration;

use futures_util::FutureExt;

use crate::db::{self, DB_POSTGRES, DbError, Finding, Level, PGVECTOR};
use crate::doctor::{CheckDef, DoctorContext, Outcome};

/// A connection on a local network answers in milliseconds; the connect timeout inside is 2 s.
const TIMEOUT: Duration = Duration::from_secs(3);

pub fn checks() -> Vec<CheckDef> {
    vec![
        CheckDef {
            id: "postgres.version",
            title: "PostgreSQL answers with the .env credentials and runs a supported major, the image's",
            needs: &["docker.reachable"],
            timeout: TIMEOUT,
            applies: |ctx| ctx.service_enabled(DB_POSTGRES.service),
            run: |ctx| async move { version(ctx).await.unwrap_or_else(failed) }.boxed(),
        },
        CheckDef {
            id: "postgres.data_dir",
            title: "the data directory's PG_VERSION is the image's major",
            needs: &["docker.reachable"],
            timeout: TIMEOUT,
            applies: |ctx| ctx.service_enabled(DB_POSTGRES.service),
            run: |ctx| async move { data_dir(ctx).await.unwrap_or_else(failed) }.boxed(),
        },
        CheckDef {
            id: "postgres.connections",
            title: "connections in use stay below 90 % of max_connections",
            needs: &["postgres.version"],
            timeout: TIMEOUT,
            applies: |ctx| ctx.service_enabled(DB_POSTGRES.service),
            run: |ctx| async move { connections(ctx).await.unwrap_or_else(failed) }.boxed(),
        },
        CheckDef {
            id: "postgres.replication",
            title: "every replica streams from the primary and is in recovery (pg_cluster)",
            needs: &["postgres.version"],
            timeout: TIMEOUT,
            applies: |ctx| ctx.profile_enabled("pg_cluster"),
            run: |ctx| async move { replication(ctx).await.unwrap_or_else(failed) }.boxed(),
        },
        CheckDef {
            id: "pgvector.extension",
            title: "the pgvector database answers and has the `vector` extension",
            needs: &["docker.reachable"],
            timeout: TIMEOUT,
            applies: |ctx| ctx.service_enabled(PGVECTOR.service),
            run: |ctx| async move { vector_extension(ctx).await.unwrap_or_else(failed) }.boxed(),
        },
    ]
}

fn outcome(f: Finding) -> Outcome {
    let hint = f.hint.unwrap_or_default();
    match f.level {
        Level::Pass => Outcome::pass(f.detail),
        Level::Warn => Outcome::warn(f.detail, hint),
        Level::Fail => Outcome::fail(f.detail, hint),
    }
}

fn failed(e: DbError) -> Outcome {
    Outcome::fail(e.to_string(), e.hint())
}

async fn version(ctx: &DoctorContext) -> Result<Outcome, DbError> {
    let ctx = &ctx.db().await;
    let target = db::locate(ctx, DB_POSTGRES).await?;
    let mut session = db::connect(ctx, &target).await?;
    let server = db::server_version(&mut session).await;
    let route = session.route.clone();
    session.close().await;
    let mut finding = db::assess_version(DB_POSTGRES.service, &server?, &db::image_of(ctx, &target));
    finding.detail.push_str(&format!("\nroute: {route}"));
    Ok(outcome(finding))
}

async fn data_dir(ctx: &DoctorContext) -> Result<Outcome, DbError> {
    let ctx = &ctx.db().await;
    let target = db::locate(ctx, DB_POSTGRES).await?;
    let dir = db::data_dir(ctx, &target).await?;
    Ok(outcome(db::assess_data_dir(&dir, &db::image_of(ctx, &target))))
}

async fn connections(ctx: &DoctorContext) -> Result<Outcome, DbError> {
    let ctx = &ctx.db().await;
    let target = db::locate(ctx, DB_POSTGRES).await?;
    let mut session = db::connect(ctx, &target).await?;
    let connections = db::connections(&mut session).await;
    session.close().await;
    Ok(outcome(db::assess_connections(&connections?)))
}

async fn replication(ctx: &DoctorContext) -> Result<Outcome, DbError> {
    let ctx = &ctx.db().await;
    let target = db::locate(ctx, DB_POSTGRES).await?;
    let mut session = db::connect(ctx, &target).await?;
    let replication = db::replication(ctx, &mut session).await;
    session.close().await;
    Ok(outcome(db::assess_replication(&replication?)))
}

async fn vector_extension(ctx: &DoctorContext) -> Result<Outcome, DbError> {
    let ctx = &ctx.db().await;
    let target = db::locate(ctx, PGVECTOR).await?;
    let mut session = db::connect(ctx, &target).await?;
    let extensions = db::extensions(&mut session, PGVECTOR.required_extensions).await;
    session.close().await;
    Ok(outcome(db::assess_extensions(PGVECTOR.service, &extensions?)))
}
