//! Reading an archive back: `verify` (every member's sha256 against the manifest), `verify --deep` (the dumps
//! restored into throwaway servers of the same image, row counts compared) and `restore` (the project's volumes
//! re-created empty, then the dumps and volume contents put back).

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Instant;

use serde::Serialize;

use super::archive::{self, Hashing, Identities};
use super::paused::Guard;
use super::{LABEL_HELPER, MANIFEST, Manifest, MemberEntry, parent_of, pg};
use crate::docker::{DockerClient, HelperContainer};
use crate::engine::spec::Desired;
use crate::error::Error;
use crate::postgres::dump::Superuser;
use crate::reporter::{Event, Reporter};

/// The manifest is small; anything larger is not ours.
const MANIFEST_LIMIT: u64 = 64 * 1024 * 1024;

fn bad(path: &std::path::Path, message: String) -> Error {
    Error::Deploy {
        message: format!("backup `{}` is damaged: {message}", path.display()),
        hint: Some("use another backup; this one cannot be restored safely".into()),
    }
}

/// A verified archive: its manifest and how many members were checked.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub manifest: Manifest,
    pub members_checked: usize,
}

/// Read the whole archive, hashing every member; exit 1 (an error) naming the first member that does not match
/// its manifest entry, cannot be read, is missing or is not listed.
pub fn verify(path: &std::path::Path, identities: &Identities) -> Result<Verified, Error> {
    let mut archive = archive::open(path, identities)?;
    let mut seen: Vec<MemberEntry> = Vec::new();
    let mut manifest_bytes = None;
    let entries = archive.entries().map_err(|e| bad(path, format!("not a tar archive: {e}")))?;
    for entry in entries {
        let after = seen.last().map(|m| format!(" after member `{}`", m.name)).unwrap_or_default();
        // A member's frame checksum is checked when the next header is read: a failure there is that member's.
        let mut entry = entry.map_err(|e| match seen.last() {
            Some(m) => bad(path, format!("member `{}` (or the header after it) is unreadable: {e}", m.name)),
            None => bad(path, format!("unreadable: {e}")),
        })?;
        let name = entry.path().map_err(|e| bad(path, format!("bad member name{after}: {e}")))?.display().to_string();
        if name == MANIFEST {
            let mut bytes = Vec::new();
            (&mut entry)
                .take(MANIFEST_LIMIT)
                .read_to_end(&mut bytes)
                .map_err(|e| bad(path, format!("member `{name}`: {e}")))?;
            manifest_bytes = Some(bytes);
            continue;
        }
        let mut hashing = Hashing::new(&mut entry);
        std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|e| bad(path, format!("member `{name}`: {e}")))?;
        let d = hashing.digest().1;
        seen.push(MemberEntry { name, size: d.size, sha256: d.sha256 });
    }
    let bytes = manifest_bytes.ok_or_else(|| bad(path, format!("no `{MANIFEST}` (the archive is incomplete)")))?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| bad(path, format!("member `{MANIFEST}`: {e}")))?;
    if manifest.format != super::FORMAT {
        return Err(Error::config(format!(
            "backup `{}` has format {}; this ragctl reads format {}",
            path.display(),
            manifest.format,
            super::FORMAT
        )));
    }
    for expected in &manifest.members {
        match seen.iter().find(|m| m.name == expected.name) {
            None => return Err(bad(path, format!("member `{}` is missing", expected.name))),
            Some(m) if m.sha256 != expected.sha256 || m.size != expected.size => {
                return Err(bad(
                    path,
                    format!(
                        "member `{}` does not match the manifest (sha256 {}, {} bytes; expected {}, {} bytes)",
                        m.name, m.sha256, m.size, expected.sha256, expected.size
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = seen.iter().find(|m| !manifest.members.iter().any(|e| e.name == m.name)) {
        return Err(bad(path, format!("member `{}` is not in the manifest", extra.name)));
    }
    Ok(Verified { members_checked: seen.len() + 1, manifest })
}

/// Where each member goes when the archive is replayed.
#[derive(Default)]
struct Targets {
    /// PostgreSQL service → (container id, name, superuser).
    pg: BTreeMap<String, (String, String, Superuser)>,
    /// Volume member → (helper container name, directory to extract into).
    volumes: BTreeMap<String, (String, String)>,
}

/// Stream every member to its target: roles and dumps into PostgreSQL, volume tars into their volumes.
async fn replay(
    docker: &DockerClient,
    path: &std::path::Path,
    identities: &Identities,
    manifest: &Manifest,
    targets: &Targets,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let mut archive = archive::open(path, identities)?;
    let entries = archive.entries().map_err(|e| bad(path, e.to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|e| bad(path, e.to_string()))?;
        let name = entry.path().map_err(|e| bad(path, e.to_string()))?.display().to_string();
        let started = Instant::now();
        let size = entry.size();
        let mut entry =
            Progress { inner: entry, member: &name, reporter, bytes: 0, last: Instant::now(), last_bytes: 0 };
        if let Some((helper, dir)) = targets.volumes.get(&name) {
            docker.archive_put(helper, helper, dir, &mut entry).await?;
        } else if let Some(instance) = manifest.postgres.iter().find(|p| p.globals_member == name) {
            let Some((id, container, su)) = targets.pg.get(&instance.service) else { continue };
            let exit = docker.exec_stream_in(id, container, &su.run_script(), &su.env(), &mut entry).await?;
            pg::check_exit("restoring the roles", container, &exit)?;
        } else if let Some((instance, db)) =
            manifest.postgres.iter().find_map(|p| p.databases.iter().find(|d| d.member == name).map(|d| (p, d)))
        {
            let Some((id, container, su)) = targets.pg.get(&instance.service) else { continue };
            let exit = docker.exec_stream_in(id, container, &su.restore(&db.name), &su.env(), &mut entry).await?;
            pg::check_exit(&format!("pg_restore of `{}`", db.name), container, &exit)?;
        } else {
            continue;
        }
        reporter.event(Event::Transferred {
            member: name,
            bytes: size,
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
    }
    Ok(())
}

/// Reports a member's bytes as they are read (a few times a second).
struct Progress<'a, R> {
    inner: R,
    member: &'a str,
    reporter: &'a dyn Reporter,
    bytes: u64,
    last: Instant,
    last_bytes: u64,
}

impl<R: Read> Read for Progress<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        let since = self.last.elapsed();
        if since >= std::time::Duration::from_millis(250) {
            let rate = (self.bytes - self.last_bytes) * 1000 / (since.as_millis().max(1) as u64);
            self.reporter.event(Event::Transfer { member: self.member.to_string(), bytes: self.bytes, rate });
            (self.last, self.last_bytes) = (Instant::now(), self.bytes);
        }
        Ok(n)
    }
}

/// A table whose row count differs from the manifest's.
#[derive(Debug, Clone, Serialize)]
pub struct RowCheck {
    pub service: String,
    pub database: String,
    pub table: String,
    pub expected: Option<u64>,
    pub actual: Option<u64>,
}

/// Compare every dumped table's rows with the manifest, on the servers in `servers` (service → id, name, su).
async fn compare_rows(
    docker: &DockerClient,
    manifest: &Manifest,
    servers: &BTreeMap<String, (String, String, Superuser)>,
) -> Result<Vec<RowCheck>, Error> {
    let mut differ = Vec::new();
    for instance in &manifest.postgres {
        let Some((id, name, su)) = servers.get(&instance.service) else { continue };
        for db in &instance.databases {
            let actual = pg::row_counts(docker, id, name, su, &db.name).await?;
            let tables: std::collections::BTreeSet<&String> = db.tables.keys().chain(actual.keys()).collect();
            for table in tables {
                let (e, a) = (db.tables.get(table).copied(), actual.get(table).copied());
                if e != a {
                    differ.push(RowCheck {
                        service: instance.service.clone(),
                        database: db.name.clone(),
                        table: table.clone(),
                        expected: e,
                        actual: a,
                    });
                }
            }
        }
    }
    Ok(differ)
}

/// The row counts of the project's running PostgreSQL services against the manifest.
pub async fn check_row_counts(
    docker: &DockerClient,
    manifest: &Manifest,
    project: &str,
) -> Result<Vec<RowCheck>, Error> {
    let containers = docker.list_containers(project).await?;
    let mut servers = BTreeMap::new();
    for instance in &manifest.postgres {
        if let Some(c) = containers.iter().find(|c| c.service == instance.service) {
            let su = pg::superuser_of(&docker.inspect(&c.id, &c.name).await?.env);
            servers.insert(instance.service.clone(), (c.id.clone(), c.name.clone(), su));
        }
    }
    compare_rows(docker, manifest, &servers).await
}

/// Start one throwaway server per instance, record them for cleanup, return the targets.
async fn throwaways(
    docker: &DockerClient,
    guard: &Guard,
    specs: Vec<(String, HelperContainer, Superuser)>,
) -> Result<Targets, Error> {
    let mut targets = Targets::default();
    for (service, spec, su) in specs {
        guard.helper(&spec.name)?;
        let id = pg::start_throwaway(docker, &spec, &su).await?;
        targets.pg.insert(service, (id, spec.name.clone(), su));
    }
    Ok(targets)
}

/// `--deep`: the dumps restored into throwaway servers of the images they came from, row counts compared with
/// the manifest. Returns the tables that differ.
pub async fn verify_deep(
    docker: &DockerClient,
    path: &std::path::Path,
    identities: &Identities,
    manifest: &Manifest,
    guard: &Guard,
    reporter: &dyn Reporter,
) -> Result<Vec<RowCheck>, Error> {
    let password: String = {
        use rand::TryRng;
        let mut bytes = [0u8; 16];
        rand::rngs::SysRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| Error::config(format!("failed to read the system's random source: {e}")))?;
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    let specs = manifest
        .postgres
        .iter()
        .map(|p| {
            let spec = HelperContainer {
                name: format!("{}-verify-{}-{}", manifest.project, p.service, std::process::id()),
                image: p.image.clone(),
                env: vec![format!("POSTGRES_USER={}", p.superuser), format!("POSTGRES_PASSWORD={password}")],
                cmd: None,
                entrypoint: None,
                user: None,
                binds: Vec::new(),
                labels: BTreeMap::from([(LABEL_HELPER.to_string(), manifest.project.clone())]),
            };
            let su = Superuser { user: p.superuser.clone(), password: Some(password.clone()) };
            (p.service.clone(), spec, su)
        })
        .collect();
    let targets = throwaways(docker, guard, specs).await?;
    replay(docker, path, identities, manifest, &targets, reporter).await?;
    compare_rows(docker, manifest, &targets.pg).await
}

/// Re-create the project's volumes empty and put the archive's data into them: volume tars through helper
/// containers, dumps through throwaway servers of the project's own PostgreSQL image and settings (so the data
/// directory is initialised as `up` would). The project's containers must be stopped; they are removed.
pub async fn restore_data(
    docker: &DockerClient,
    path: &std::path::Path,
    identities: &Identities,
    manifest: &Manifest,
    desired: &Desired,
    guard: &Guard,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let project = &desired.project;
    for c in docker.list_containers(project).await? {
        docker.remove(&c.id, &c.name, true).await?;
        reporter.event(Event::Removed { kind: "container".into(), name: c.name });
    }
    for v in docker.list_volumes(project).await? {
        docker.remove_volume(&v).await?;
        reporter.event(Event::Removed { kind: "volume".into(), name: v });
    }
    for v in &desired.volumes {
        docker.create_volume(&v.name, &v.labels).await?;
        reporter.event(Event::VolumeCreated { name: v.name.clone() });
    }
    let labels = BTreeMap::from([(LABEL_HELPER.to_string(), project.clone())]);
    let spec_of = |service: &str| desired.containers.iter().find(|c| c.service == service && c.number == 1);
    let mut specs = Vec::new();
    for instance in &manifest.postgres {
        let Some(spec) = spec_of(&instance.service) else {
            reporter.event(Event::Note {
                message: format!("skipping the dumps of `{}`: the project has no such service", instance.service),
            });
            continue;
        };
        // Every mount of the service, the rendered init scripts and configuration included (the caller rendered
        // them), so the data directory is initialised exactly as `up` would.
        let binds = spec.binds.iter().cloned();
        let helper = HelperContainer {
            name: format!("{project}-restore-{}-{}", spec.service, std::process::id()),
            image: spec.image.clone(),
            env: spec.env.clone(),
            cmd: spec.cmd.clone(),
            entrypoint: spec.entrypoint.clone(),
            user: spec.user.clone(),
            binds: binds.collect(),
            labels: labels.clone(),
        };
        specs.push((spec.service.clone(), helper, pg::superuser_of(&spec.env)));
    }
    let mut targets = throwaways(docker, guard, specs).await?;
    for entry in &manifest.volumes {
        let full = format!("{project}_{}", entry.volume);
        let Some(spec) = spec_of(&entry.service).filter(|_| desired.volumes.iter().any(|v| v.name == full)) else {
            reporter.event(Event::Note {
                message: format!("skipping volume `{}`: the project has no such volume", entry.volume),
            });
            continue;
        };
        let helper = HelperContainer {
            name: format!("{project}-restore-{}-{}", entry.volume, std::process::id()),
            image: spec.image.clone(),
            env: Vec::new(),
            cmd: None,
            entrypoint: None,
            user: None,
            binds: vec![format!("{full}:{}", entry.mount)],
            labels: labels.clone(),
        };
        guard.helper(&helper.name)?;
        docker.create_helper(&helper).await?;
        let dir = if entry.kind == "volume" { parent_of(&entry.path) } else { entry.mount.clone() };
        targets.volumes.insert(entry.member.clone(), (helper.name, dir));
    }
    replay(docker, path, identities, manifest, &targets, reporter).await?;
    // The archived data's release record goes with it (the caller checked the selected release against it).
    if let (Some(release), Some(at), Some((id, name, _))) =
        (&manifest.release, super::data_release::location(desired), targets.pg.get(super::data_release::SERVICE))
    {
        super::data_release::write_in(docker, id, name, &at.dir, None, release).await?;
    }
    // A clean shutdown, so the data directory is consistent before `up` starts the service on it.
    for (id, name, _) in targets.pg.values() {
        docker.stop(id, name, Some(60)).await?;
    }
    Ok(())
}

/// The contents of the named small members (project files), read from the start of the archive.
pub fn read_small_members(
    path: &std::path::Path,
    identities: &Identities,
    names: &[&str],
) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let mut archive = archive::open(path, identities)?;
    let mut found = BTreeMap::new();
    for entry in archive.entries().map_err(|e| bad(path, e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(path, e.to_string()))?;
        let name = entry.path().map_err(|e| bad(path, e.to_string()))?.display().to_string();
        if names.contains(&name.as_str()) {
            let mut bytes = Vec::new();
            (&mut entry).take(MANIFEST_LIMIT).read_to_end(&mut bytes).map_err(|e| bad(path, e.to_string()))?;
            found.insert(name, bytes);
        } else if !name.starts_with("config/") {
            break; // project files come first
        }
    }
    Ok(found)
}
