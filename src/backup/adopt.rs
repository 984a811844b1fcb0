//! `adopt`: take over the data of a Dify `docker/` deployment. Each bind-mounted data directory of that
//! deployment (`volumes/db/data`, `volumes/redis/data`, `volumes/weaviate`, …) is copied into the project's
//! named volume mounted at the same path of the same service, as the Engine's tar archive streamed from a helper
//! container mounting the directory read-only into a helper container mounting the volume (owners, modes and
//! symlinks kept; nothing staged). The deployment's directory is never written: PostgreSQL is only ever started
//! on the copy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::paused::Guard;
use super::{LABEL_HELPER, RowCheck, parent_of, pg};
use crate::docker::{DockerClient, HelperContainer};
use crate::engine::spec::{ContainerSpec, Desired};
use crate::error::Error;
use crate::reporter::{Event, Reporter};

/// The data directories Dify's `docker-compose.yaml` bind-mounts (relative to its `docker/` directory), by
/// service and container path (Dify 1.13.3's `services.*.volumes`; a test holds them to `releases/1.13.3.yaml`).
pub const DIFY_DATA_BINDS: &[(&str, &str, &str)] = &[
    ("db_postgres", "volumes/db/data", "/var/lib/postgresql/data"),
    ("redis", "volumes/redis/data", "/data"),
    ("weaviate", "volumes/weaviate", "/var/lib/weaviate"),
    ("api", "volumes/app/storage", "/app/api/storage"),
    ("worker", "volumes/app/storage", "/app/api/storage"),
    ("plugin_daemon", "volumes/plugin_daemon", "/app/storage"),
    ("sandbox", "volumes/sandbox/dependencies", "/dependencies"),
    ("pgvector", "volumes/pgvector/data", "/var/lib/postgresql/data"),
    ("qdrant", "volumes/qdrant", "/qdrant/storage"),
    ("etcd", "volumes/milvus/etcd", "/etcd"),
    ("minio", "volumes/milvus/minio", "/minio_data"),
    ("milvus-standalone", "volumes/milvus/milvus", "/var/lib/milvus"),
];

/// PostgreSQL services whose tables are counted before and after.
const PG_SERVICES: [&str; 2] = ["db_postgres", "pgvector"];

/// One directory of the deployment and the project volume it goes into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transfer {
    pub service: String,
    /// Relative to the deployment's directory.
    pub source: String,
    /// The volume's full name.
    pub volume: String,
    pub mount: String,
    pub image: String,
    /// The archive's size once copied.
    pub bytes: u64,
}

/// A data directory of the deployment that has no volume in the project, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub source: String,
    pub reason: String,
}

/// What goes where: every data directory present in `dir` whose service the project has, once per volume.
pub fn plan(dir: &Path, desired: &Desired) -> (Vec<Transfer>, Vec<Skipped>) {
    let mut transfers: Vec<Transfer> = Vec::new();
    let mut skipped: Vec<Skipped> = Vec::new();
    for (service, source, target) in DIFY_DATA_BINDS {
        if !dir.join(source).is_dir() {
            continue;
        }
        let spec = desired.containers.iter().find(|c| c.service == *service && c.number == 1);
        let mount = spec.and_then(|s| {
            super::create::named_mounts(desired, s).into_iter().find(|(_, _, m)| m == target).map(|m| (s, m.1))
        });
        match mount {
            Some((spec, volume)) => {
                if !transfers.iter().any(|t| t.volume == volume) {
                    transfers.push(Transfer {
                        service: service.to_string(),
                        source: source.to_string(),
                        volume,
                        mount: target.to_string(),
                        image: spec.image.clone(),
                        bytes: 0,
                    });
                }
            }
            None if transfers.iter().any(|t| t.source == *source) => {}
            None => {
                if !skipped.iter().any(|s| s.source == *source) {
                    let reason = match spec {
                        None => format!("the project has no service `{service}` (enable its profile to adopt it)"),
                        Some(_) => format!("`{service}` mounts no volume at {target} in this project"),
                    };
                    skipped.push(Skipped { source: source.to_string(), reason });
                }
            }
        }
    }
    skipped.retain(|s| !transfers.iter().any(|t| t.source == s.source));
    (transfers, skipped)
}

fn helper(project: &str, role: &str, t: &Transfer, bind: String) -> HelperContainer {
    super::mount_helper(project, &format!("adopt-{role}-{}", t.service), &t.image, bind)
}

/// Whether the volume holds anything (more than its own directory), read through a helper that is never started.
async fn holds_data(docker: &DockerClient, guard: &Guard, project: &str, t: &Transfer) -> Result<bool, Error> {
    const ENOUGH: usize = 1 << 20;
    let spec = helper(project, "check", t, format!("{}:{}:ro", t.volume, t.mount));
    guard.helper(&spec.name)?;
    docker.create_helper(&spec).await?;
    let mut bytes = Vec::new();
    let read = docker
        .archive_get(&spec.name, &spec.name, &t.mount, &mut |chunk| {
            bytes.extend_from_slice(chunk);
            if bytes.len() > ENOUGH { Err(Error::Interrupted) } else { Ok(()) }
        })
        .await;
    guard.remove_helper(docker, &spec.name).await?;
    match read {
        Err(Error::Interrupted) => return Ok(true),
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    let mut archive = tar::Archive::new(&bytes[..]);
    let entries = archive.entries().map_err(|e| Error::io("read the archive of", &t.volume, e))?;
    Ok(entries.count() > 1)
}

/// Refuse before anything is written: a PostgreSQL data directory of another major than the project's image,
/// or a project volume that already holds data (unless `replace`, which re-creates it empty).
pub async fn check(
    docker: &DockerClient,
    dir: &Path,
    desired: &Desired,
    transfers: &[Transfer],
    replace: bool,
    guard: &Guard,
) -> Result<(), Error> {
    let project = &desired.project;
    for t in transfers.iter().filter(|t| PG_SERVICES.contains(&t.service.as_str())) {
        let Some(spec) = spec_of(desired, &t.service) else { continue };
        let Some(image_major) = crate::db::image_major(&t.image) else { continue };
        let pgdata = pgdata_of(spec);
        let source = dir.join(&t.source).display().to_string();
        let found = super::guard::pg_version(docker, project, &t.image, &source, &t.mount, &pgdata).await?;
        match found {
            Some(major) if major != image_major => {
                return Err(Error::Deploy {
                    message: format!(
                        "`{source}` holds PostgreSQL {major} data but the project runs `{}` (PostgreSQL {image_major}); nothing was copied",
                        t.image
                    ),
                    hint: Some(format!(
                        "run the deployment's PostgreSQL {major} image for `{}` (`images:` in ragctl.yaml or RAGCTL_IMAGE_{}), or upgrade the deployment's data to {image_major} first (pg_upgrade, or a dump and restore)",
                        t.service,
                        t.service.to_uppercase()
                    )),
                });
            }
            Some(_) => {}
            None => {
                return Err(Error::Deploy {
                    message: format!("`{source}` has no PostgreSQL data directory ({pgdata} holds no PG_VERSION)"),
                    hint: Some("point adopt at the deployment's docker/ directory".into()),
                });
            }
        }
    }
    let existing = docker.list_volumes(project).await?;
    if replace {
        return Ok(());
    }
    for t in transfers.iter().filter(|t| existing.contains(&t.volume)) {
        if holds_data(docker, guard, project, t).await? {
            return Err(Error::Deploy {
                message: format!("the project's volume `{}` already holds data; nothing was copied", t.volume),
                hint: Some(
                    "adopt into a new project (-p NAME), or pass --replace-data to replace the project's data with the deployment's".into(),
                ),
            });
        }
    }
    Ok(())
}

fn spec_of<'a>(desired: &'a Desired, service: &str) -> Option<&'a ContainerSpec> {
    desired.containers.iter().find(|c| c.service == service && c.number == 1)
}

fn pgdata_of(spec: &ContainerSpec) -> String {
    spec.env
        .iter()
        .find_map(|e| e.strip_prefix("PGDATA="))
        .unwrap_or("/var/lib/postgresql/data")
        .trim_end_matches('/')
        .to_string()
}

/// Copy every directory into its volume (created, or re-created empty when `replace`). The project must not run.
pub async fn copy(
    docker: &DockerClient,
    dir: &Path,
    desired: &Desired,
    transfers: &mut [Transfer],
    replace: bool,
    guard: &Guard,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let project = &desired.project;
    let existing = docker.list_volumes(project).await?;
    for v in desired.volumes.iter().filter(|v| transfers.iter().any(|t| t.volume == v.name)) {
        if existing.contains(&v.name) {
            if !replace {
                continue;
            }
            for c in docker.list_containers(project).await? {
                docker.remove(&c.id, &c.name, true).await?;
                reporter.event(Event::Removed { kind: "container".into(), name: c.name });
            }
            docker.remove_volume(&v.name).await?;
            reporter.event(Event::Removed { kind: "volume".into(), name: v.name.clone() });
        }
        docker.create_volume(&v.name, &v.labels).await?;
        reporter.event(Event::VolumeCreated { name: v.name.clone() });
    }
    for t in transfers.iter_mut() {
        let started = Instant::now();
        let source: PathBuf = dir.join(&t.source);
        let src = helper(project, "from", t, format!("{}:{}:ro", source.display(), t.mount));
        let dst = helper(project, "into", t, format!("{}:{}", t.volume, t.mount));
        for spec in [&src, &dst] {
            guard.helper(&spec.name)?;
            docker.create_helper(spec).await?;
        }
        let into = parent_of(&t.mount);
        t.bytes = docker.archive_copy((&src.name, &src.name, &t.mount), (&dst.name, &dst.name, &into)).await?;
        for spec in [&src, &dst] {
            guard.remove_helper(docker, &spec.name).await?;
        }
        reporter.event(Event::Transferred {
            member: format!("{} → {}", t.source, t.volume),
            bytes: t.bytes,
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
    }
    Ok(())
}

/// Rows per table, per database, per PostgreSQL service.
pub type Counts = BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>>;

async fn count_on(
    docker: &DockerClient,
    id: &str,
    name: &str,
    su: &crate::postgres::dump::Superuser,
) -> Result<BTreeMap<String, BTreeMap<String, u64>>, Error> {
    let mut out = BTreeMap::new();
    for db in pg::query(docker, id, name, su, &su.list_databases()).await? {
        out.insert(db.clone(), pg::row_counts(docker, id, name, su, &db).await?);
    }
    Ok(out)
}

/// Count the copied data's rows before the stack starts: a throwaway server of the project's own image and
/// settings on the copy (never on the deployment's directory), stopped cleanly afterwards.
pub async fn count_copied(
    docker: &DockerClient,
    desired: &Desired,
    transfers: &[Transfer],
    guard: &Guard,
) -> Result<Counts, Error> {
    let project = &desired.project;
    let mut counts = Counts::new();
    for t in transfers.iter().filter(|t| PG_SERVICES.contains(&t.service.as_str())) {
        let Some(spec) = spec_of(desired, &t.service) else { continue };
        let server = HelperContainer {
            name: format!("{project}-adopt-count-{}-{}", t.service, std::process::id()),
            image: spec.image.clone(),
            env: spec.env.clone(),
            cmd: spec.cmd.clone(),
            entrypoint: spec.entrypoint.clone(),
            user: spec.user.clone(),
            binds: spec.binds.clone(),
            labels: BTreeMap::from([(LABEL_HELPER.to_string(), project.clone())]),
        };
        let su = pg::superuser_of(&spec.env);
        guard.helper(&server.name)?;
        let id = pg::start_throwaway(docker, &server, &su).await?;
        let counted = count_on(docker, &id, &server.name, &su).await;
        // A clean shutdown, so the data directory is consistent before `up` starts the service on it.
        docker.stop(&id, &server.name, Some(60)).await?;
        guard.remove_helper(docker, &server.name).await?;
        counts.insert(t.service.clone(), counted?);
    }
    Ok(counts)
}

/// The running project's rows against `before`: the tables that differ.
pub async fn compare_running(docker: &DockerClient, project: &str, before: &Counts) -> Result<Vec<RowCheck>, Error> {
    let containers = docker.list_containers(project).await?;
    let mut differ = Vec::new();
    for (service, databases) in before {
        let Some(c) = containers.iter().find(|c| &c.service == service && c.state == "running") else {
            return Err(Error::Deploy { message: format!("`{service}` is not running after up"), hint: None });
        };
        let su = pg::superuser_of(&docker.inspect(&c.id, &c.name).await?.env);
        let after = count_on(docker, &c.id, &c.name, &su).await?;
        let names: std::collections::BTreeSet<&String> = databases.keys().chain(after.keys()).collect();
        for db in names {
            let (e, a) = (databases.get(db), after.get(db));
            let tables: std::collections::BTreeSet<&String> =
                e.into_iter().flat_map(|m| m.keys()).chain(a.into_iter().flat_map(|m| m.keys())).collect();
            for table in tables {
                let (expected, actual) = (e.and_then(|m| m.get(table)).copied(), a.and_then(|m| m.get(table)).copied());
                if expected != actual {
                    differ.push(RowCheck {
                        service: service.clone(),
                        database: db.clone(),
                        table: table.clone(),
                        expected,
                        actual,
                    });
                }
            }
        }
    }
    Ok(differ)
}

/// The compose project name of a `docker/` directory: `COMPOSE_PROJECT_NAME` when set, else the directory's
/// name as compose normalises it (lowercase; letters, digits, `-` and `_`).
pub fn compose_project_name(dir: &Path, env_value: Option<&str>) -> String {
    if let Some(v) = env_value.filter(|v| !v.is_empty()) {
        return v.to_string();
    }
    let base = dir.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    base.chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::spec::VolumeSpec;

    #[test]
    fn every_adopted_directory_is_a_bind_mount_of_the_recorded_release() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("releases/1.13.3.yaml");
        let doc: serde_json::Value = yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for (service, source, target) in DIFY_DATA_BINDS {
            let binds = doc["services"][service]["volumes"].as_array().unwrap_or_else(|| panic!("{service}"));
            assert!(
                binds.iter().any(|b| b["type"] == "bind"
                    && b["source"] == format!("./{source}").as_str()
                    && b["target"] == *target),
                "Dify 1.13.3's `{service}` does not bind-mount ./{source} at {target}"
            );
        }
    }

    #[test]
    fn the_plan_maps_present_directories_to_the_volume_at_the_same_path_once() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["volumes/db/data", "volumes/app/storage", "volumes/qdrant"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let container = |service: &str, binds: &[&str]| ContainerSpec {
            name: format!("p-{service}-1"),
            service: service.into(),
            number: 1,
            image: format!("{service}:1"),
            env: vec![],
            cmd: None,
            entrypoint: None,
            user: None,
            healthcheck: None,
            ports: vec![],
            binds: binds.iter().map(|b| b.to_string()).collect(),
            anonymous_volumes: vec![],
            networks: vec![],
            aliases: vec![],
            restart: String::new(),
            log_driver: None,
            log_options: BTreeMap::new(),
            nano_cpus: None,
            memory: None,
            shm_size: None,
            security_opt: vec![],
            cap_add: vec![],
            tmpfs: BTreeMap::new(),
            ulimits: BTreeMap::new(),
            sysctls: BTreeMap::new(),
            stop_timeout: None,
            labels: BTreeMap::new(),
            depends_on: vec![],
            ready: crate::profile::ReadinessProbe::Started,
            ready_timeout: std::time::Duration::from_secs(1),
        };
        let desired = Desired {
            project: "p".into(),
            networks: vec![],
            volumes: ["p_db_data", "p_app_storage"]
                .iter()
                .map(|v| VolumeSpec { name: v.to_string(), labels: Default::default() })
                .collect(),
            containers: vec![
                container("db_postgres", &["p_db_data:/var/lib/postgresql/data"]),
                container("api", &["p_app_storage:/app/api/storage"]),
                container("worker", &["p_app_storage:/app/api/storage"]),
            ],
        };
        let (transfers, skipped) = plan(dir.path(), &desired);
        let got: Vec<(&str, &str)> = transfers.iter().map(|t| (t.source.as_str(), t.volume.as_str())).collect();
        assert_eq!(got, [("volumes/db/data", "p_db_data"), ("volumes/app/storage", "p_app_storage")]);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].source, "volumes/qdrant");
        assert!(skipped[0].reason.contains("no service `qdrant`"), "{}", skipped[0].reason);
    }

    #[test]
    fn the_compose_project_name_is_the_env_value_or_the_normalised_directory_name() {
        assert_eq!(compose_project_name(Path::new("/srv/dify/docker"), None), "docker");
        assert_eq!(compose_project_name(Path::new("/srv/My.Dify"), Some("")), "mydify");
        assert_eq!(compose_project_name(Path::new("/srv/x"), Some("prod")), "prod");
    }
}
