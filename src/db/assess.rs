//! Assessments: what each fact means, under the doctor check id that owns it. Pure, shared by `db check` and
//! the doctor.

use serde::Serialize;

use super::error::DATA_DIR_HINT;
use super::{
    Connections, DataDir, DbError, Extensions, INCOMPATIBLE_DATA_LOG, ImageVersion, MIN_MAJOR, Replica, Replication,
    ServerVersion,
};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Standby, image_major};

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
}
