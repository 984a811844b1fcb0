//! `up`'s data-safety guards, checked before anything is created:
//! - a named volume that held this project's data is about to be created anew (pruned, the project renamed, the
//!   directory copied without its volumes): refused unless `--allow-empty-data`. What held data is recorded by a
//!   successful `up` in the project directory ([`RECORD_FILE`]), so the record travels with the directory and
//!   survives a new project name; `down --volumes` (the operator removing the data on purpose) deletes it;
//! - a PostgreSQL data directory initialised by another major than the image's: refused with the fix, instead of
//!   a container that exits with "database files are incompatible with server".

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::docker::{DockerClient, ObservedContainer};
use crate::engine::spec::{Desired, VolumeSpec};
use crate::error::{Error, SourceLocation};

/// The record of the volumes that hold the project's data, in the project directory.
pub const RECORD_FILE: &str = ".ragctl-data.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRecord {
    /// The project name the volumes were created under.
    pub project: String,
    /// Their names in the stack (without the project prefix).
    pub volumes: Vec<String>,
    /// Set while `restore` refills the volumes: the archive. A restore that did not finish leaves it, and `up`
    /// refuses to start on half-restored data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restoring: Option<String>,
    /// The volumes (other than PostgreSQL's, whose data directory is checked instead) an `up` found holding files:
    /// found empty later, `up` refuses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filled: Vec<String>,
}

/// The record, if there is one.
pub fn read_record(project_dir: &Path) -> Result<Option<DataRecord>, Error> {
    let path = project_dir.join(RECORD_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| Error::Parse {
            location: SourceLocation::at(path.display().to_string(), e.line(), e.column()),
            message: format!("{e} (written by `ragctl up`; delete the file if it was edited by hand)"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// What a successful `up` of `desired` records.
pub fn record_of(desired: &Desired) -> DataRecord {
    let prefix = format!("{}_", desired.project);
    DataRecord {
        project: desired.project.clone(),
        volumes: desired.volumes.iter().map(|v| v.name.strip_prefix(&prefix).unwrap_or(&v.name).to_string()).collect(),
        restoring: None,
        filled: Vec::new(),
    }
}

/// Refuse to create anew a volume the record says held data.
pub fn check_missing(record: Option<&DataRecord>, desired: &Desired, create: &[VolumeSpec]) -> Result<(), Error> {
    let Some(record) = record else { return Ok(()) };
    if let Some(archive) = &record.restoring {
        return Err(Error::Deploy {
            message: format!("a restore of `{archive}` into this project did not finish: its data is incomplete"),
            hint: Some(format!(
                "run `ragctl restore {archive}` again, or pass --allow-empty-data to start on what is there"
            )),
        });
    }
    let prefix = format!("{}_", desired.project);
    let missing: Vec<&str> = create
        .iter()
        .filter_map(|v| v.name.strip_prefix(&prefix))
        .filter(|short| record.volumes.iter().any(|r| r == short))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = missing.iter().map(|m| format!("`{prefix}{m}`")).collect();
    let renamed = if record.project != desired.project {
        format!(" (it was created as project `{}`: `-p {}` finds that data)", record.project, record.project)
    } else {
        String::new()
    };
    Err(Error::Deploy {
        message: format!(
            "the data volume{} {} held this project's data but {} missing{renamed}; nothing was created",
            if names.len() == 1 { "" } else { "s" },
            names.join(", "),
            if names.len() == 1 { "is" } else { "are" },
        ),
        hint: Some(
            "restore the data with `ragctl restore ARCHIVE` (`ragctl backup list` shows the archives), or pass --allow-empty-data to start with empty volumes".into(),
        ),
    })
}

/// PostgreSQL services whose data directory is checked against the image's major.
const PG_SERVICES: [&str; 2] = ["db_postgres", "pgvector"];

/// Refuse to start a PostgreSQL service on a data directory of another major than its image's, or (unless
/// `allow_empty`) on an empty one in a volume the record says held data. Only services that are not running and
/// whose volume exists are looked at (a helper container reads `PG_VERSION`).
pub async fn check_pg_data(
    docker: &DockerClient,
    desired: &Desired,
    containers: &[ObservedContainer],
    volumes: &[String],
    record: Option<&DataRecord>,
    allow_empty: bool,
) -> Result<(), Error> {
    for spec in desired.containers.iter().filter(|s| PG_SERVICES.contains(&s.service.as_str()) && s.number == 1) {
        if containers.iter().any(|c| c.service == spec.service && c.state == "running") {
            continue;
        }
        let Some(image_major) = crate::db::image_major(&spec.image) else { continue };
        let pgdata = spec
            .env
            .iter()
            .find_map(|e| e.strip_prefix("PGDATA="))
            .unwrap_or("/var/lib/postgresql/data")
            .trim_end_matches('/')
            .to_string();
        let Some((_, full, mount)) = super::create::named_mounts(desired, spec)
            .into_iter()
            .find(|(_, full, mount)| volumes.contains(full) && pgdata.starts_with(mount.as_str()))
        else {
            continue;
        };
        let Some(data_major) = pg_version(docker, &desired.project, &spec.image, &full, &mount, &pgdata).await? else {
            let prefix = format!("{}_", desired.project);
            let held = record.is_some_and(|r| r.volumes.iter().any(|v| full.strip_prefix(&prefix) == Some(v)));
            if held && !allow_empty {
                return Err(Error::Deploy {
                    message: format!(
                        "the data volume `{full}` held this project's data but its PostgreSQL data directory ({pgdata}) is empty; nothing was started"
                    ),
                    hint: Some(
                        "restore the data with `ragctl restore ARCHIVE` (`ragctl backup list` shows the archives), or pass --allow-empty-data to initialise an empty database".into(),
                    ),
                });
            }
            continue;
        };
        if data_major != image_major {
            return Err(Error::Deploy {
                message: format!(
                    "the PostgreSQL data directory in volume `{full}` was initialised by PostgreSQL {data_major}, but `{}` runs `{}` (major {image_major}); nothing was started",
                    spec.service, spec.image
                ),
                hint: Some(format!(
                    "run the image of major {data_major} again (RAGCTL_IMAGE_{}), or move the data across: `ragctl backup` with the old image, `ragctl down --volumes`, then `ragctl restore ARCHIVE` with the new one",
                    spec.service.to_uppercase()
                )),
            });
        }
    }
    Ok(())
}

/// Services whose volumes hold a PostgreSQL data directory (checked by [`check_pg_data`], or a replica's clone).
const PG_VOLUME_SERVICES: [&str; 3] = ["db_postgres", "pgvector", "db_postgres_replica"];

/// Refuse (unless `allow_empty`) to start on an empty volume that an earlier `up` found holding files: Redis's,
/// the vector store's, the app's storage, every stateful volume but PostgreSQL's. Only volumes that exist and that
/// no running container mounts are looked at, through a helper container that is never started and reads no more
/// than the first entries of the volume. Returns the short names of the volumes found holding files (the record's
/// next `filled`, with those not looked at kept from the record).
pub async fn check_filled(
    docker: &DockerClient,
    desired: &Desired,
    containers: &[ObservedContainer],
    volumes: &[String],
    record: Option<&DataRecord>,
    allow_empty: bool,
) -> Result<Vec<String>, Error> {
    let Some(record) = record else { return Ok(Vec::new()) };
    let mut filled = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for spec in desired.containers.iter().filter(|s| !PG_VOLUME_SERVICES.contains(&s.service.as_str())) {
        for (short, full, mount) in super::create::named_mounts(desired, spec) {
            if seen.contains(&short) || !record.volumes.contains(&short) {
                continue;
            }
            seen.push(short.clone());
            let in_use = containers.iter().filter(|c| c.state == "running").any(|c| {
                desired.containers.iter().any(|s| {
                    s.service == c.service && super::create::named_mounts(desired, s).iter().any(|(_, f, _)| *f == full)
                })
            });
            let was_filled = record.filled.contains(&short);
            if in_use || !volumes.contains(&full) {
                if was_filled {
                    filled.push(short);
                }
                continue;
            }
            if holds_files(docker, &desired.project, &spec.image, &full, &mount).await? {
                filled.push(short);
            } else if was_filled && !allow_empty {
                return Err(Error::Deploy {
                    message: format!(
                        "the data volume `{full}` (`{}` at {mount}) held this project's data but is empty; nothing was started",
                        spec.service
                    ),
                    hint: Some(
                        "restore the data with `ragctl restore ARCHIVE` (`ragctl backup list` shows the archives), or pass --allow-empty-data to start with it empty".into(),
                    ),
                });
            }
        }
    }
    Ok(filled)
}

/// Whether the volume holds anything at all, read through a helper container that is never started: the Engine's
/// tar of the mount is read only until a second entry (the first is the directory itself) or 64 KiB.
async fn holds_files(
    docker: &DockerClient,
    project: &str,
    image: &str,
    volume: &str,
    mount: &str,
) -> Result<bool, Error> {
    const ENOUGH: usize = 64 * 1024;
    let helper = super::mount_helper(project, "fillcheck", image, format!("{volume}:{mount}:ro"));
    docker.create_helper(&helper).await?;
    let mut prefix = Vec::new();
    let read = docker
        .archive_get(&helper.name, &helper.name, mount, &mut |b| {
            if prefix.len() >= ENOUGH {
                return Err(Error::config("enough read".to_string()));
            }
            prefix.extend_from_slice(b);
            Ok(())
        })
        .await;
    docker.remove(&helper.name, &helper.name, true).await?;
    if prefix.len() < ENOUGH {
        read?;
    }
    Ok(tar_has_child(&prefix))
}

/// Whether a (possibly truncated) tar of a directory has an entry besides the directory itself.
fn tar_has_child(prefix: &[u8]) -> bool {
    let mut archive = tar::Archive::new(prefix);
    let Ok(entries) = archive.entries() else { return false };
    entries.take(2).filter(|e| e.is_ok()).count() > 1
}

/// `PG_VERSION` of the data directory in `volume` (a volume's name or a host path), read through a helper
/// container that is never started.
pub(crate) async fn pg_version(
    docker: &DockerClient,
    project: &str,
    image: &str,
    volume: &str,
    mount: &str,
    pgdata: &str,
) -> Result<Option<u32>, Error> {
    let helper = super::mount_helper(project, "pgcheck", image, format!("{volume}:{mount}:ro"));
    docker.create_helper(&helper).await?;
    let mut tar_bytes = Vec::new();
    let read = docker
        .archive_get(&helper.name, &helper.name, &format!("{pgdata}/PG_VERSION"), &mut |b| {
            tar_bytes.extend_from_slice(b);
            Ok(())
        })
        .await;
    docker.remove(&helper.name, &helper.name, true).await?;
    if read.is_err() {
        return Ok(None); // no PG_VERSION: an empty data directory, initialised at start
    }
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut text = String::new();
    if let Some(Ok(mut entry)) = archive.entries().ok().and_then(|mut e| e.next()) {
        use std::io::Read;
        let _ = (&mut entry).take(64).read_to_string(&mut text);
    }
    Ok(text.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(project: &str) -> Desired {
        let volume = |v: &str| VolumeSpec { name: format!("{project}_{v}"), labels: Default::default() };
        Desired {
            project: project.into(),
            networks: vec![],
            volumes: vec![volume("db_data"), volume("redis_data")],
            containers: vec![],
        }
    }

    #[test]
    fn a_volume_holds_files_when_its_tar_has_an_entry_besides_itself() {
        let tar_of = |children: &[&str]| {
            let mut b = tar::Builder::new(Vec::new());
            let mut dir = tar::Header::new_gnu();
            dir.set_entry_type(tar::EntryType::Directory);
            dir.set_size(0);
            b.append_data(&mut dir, "data/", &[][..]).unwrap();
            for c in children {
                let mut h = tar::Header::new_gnu();
                h.set_size(70_000);
                b.append_data(&mut h, format!("data/{c}"), &vec![7u8; 70_000][..]).unwrap();
            }
            b.into_inner().unwrap()
        };
        assert!(!tar_has_child(&tar_of(&[])));
        assert!(tar_has_child(&tar_of(&["dump.rdb"])));
        // Truncated where the reading stopped: the first entry's header is enough.
        assert!(tar_has_child(&tar_of(&["dump.rdb", "more"])[..64 * 1024]));
        assert!(!tar_has_child(&[]));
    }

    #[test]
    fn a_recorded_volume_about_to_be_created_is_refused_naming_it() {
        let d = desired("demo");
        let record = record_of(&d);
        assert_eq!(record.volumes, ["db_data", "redis_data"]);
        assert!(check_missing(Some(&record), &d, &[]).is_ok());
        assert!(check_missing(None, &d, &d.volumes).is_ok());
        let err = check_missing(Some(&record), &d, &d.volumes[..1]).unwrap_err().to_string();
        assert!(err.contains("`demo_db_data` held this project's data but is missing"), "{err}");
        let renamed = desired("other");
        let err = check_missing(Some(&record), &renamed, &renamed.volumes).unwrap_err().to_string();
        assert!(err.contains("created as project `demo`"), "{err}");
        let unfinished = DataRecord { restoring: Some("b.tar.zst".into()), ..record };
        let err = check_missing(Some(&unfinished), &d, &[]).unwrap_err().to_string();
        assert!(err.contains("a restore of `b.tar.zst` into this project did not finish"), "{err}");
    }
}
