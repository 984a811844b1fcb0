//! `ragctl backup`: every member streamed from the running stack into the archive, the manifest last.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::archive::{ArchiveWriter, Spool};
use super::paused::Guard;
use super::{ImageRef, MANIFEST, Manifest, MemberEntry, PgDatabase, PgInstance, VolumeEntry, pg};
use crate::docker::{DockerClient, ObservedContainer};
use crate::engine::spec::{ContainerSpec, Desired};
use crate::error::Error;
use crate::reporter::{Event, Reporter};

/// PostgreSQL services dumped logically (a pg_cluster replica is a clone of the primary: not dumped).
pub const PG_SERVICES: [&str; 2] = ["db_postgres", "pgvector"];
/// Services whose volumes are not archived: dumped, snapshotted or cloned instead.
const NOT_ARCHIVED: [&str; 4] = ["db_postgres", "pgvector", "db_postgres_replica", "redis"];
/// How often a member's progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// How long Redis may take for BGSAVE.
const BGSAVE_TIMEOUT: Duration = Duration::from_secs(600);

/// What to back up and where.
pub struct BackupRequest<'a> {
    pub desired: &'a Desired,
    /// Project files saved as they are: (member name, path).
    pub files: Vec<(String, PathBuf)>,
    /// Where the temporary file and the member spools go (the destination's directory).
    pub dir: &'a Path,
    pub dest: &'a Path,
    pub recipients: Vec<age::x25519::Recipient>,
    pub ragctl_version: &'a str,
    pub created: String,
}

/// The named volumes `spec` mounts: (short name, full name, mount path).
pub fn named_mounts(desired: &Desired, spec: &ContainerSpec) -> Vec<(String, String, String)> {
    let prefix = format!("{}_", desired.project);
    spec.binds
        .iter()
        .filter_map(|b| {
            let mut parts = b.split(':');
            let (source, target) = (parts.next()?, parts.next()?);
            let short = source.strip_prefix(&prefix)?;
            desired.volumes.iter().any(|v| v.name == source).then(|| (short.into(), source.into(), target.into()))
        })
        .collect()
}

/// Streams one member into the archive, reporting its progress.
struct Member<'a> {
    name: String,
    spool: Spool,
    dir: &'a Path,
    reporter: &'a dyn Reporter,
    last: Instant,
    last_bytes: u64,
}

impl<'a> Member<'a> {
    fn new(writer: &ArchiveWriter, name: String, dir: &'a Path, reporter: &'a dyn Reporter) -> Result<Self, Error> {
        Ok(Member { name, spool: writer.spool()?, dir, reporter, last: Instant::now(), last_bytes: 0 })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.spool.write(bytes, self.dir)?;
        let since = self.last.elapsed();
        if since >= PROGRESS_EVERY {
            let size = self.spool.size();
            let rate = (size - self.last_bytes) * 1000 / (since.as_millis().max(1) as u64);
            self.reporter.event(Event::Transfer { member: self.name.clone(), bytes: size, rate });
            (self.last, self.last_bytes) = (Instant::now(), size);
        }
        Ok(())
    }

    fn finish(self, writer: &mut ArchiveWriter, members: &mut Vec<MemberEntry>) -> Result<(), Error> {
        let started = self.spool.started;
        let digested = writer.append(&self.name, self.spool)?;
        self.reporter.event(Event::Transferred {
            member: self.name.clone(),
            bytes: digested.size,
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
        members.push(MemberEntry { name: self.name, size: digested.size, sha256: digested.sha256 });
        Ok(())
    }
}

fn running<'c>(containers: &'c [ObservedContainer], service: &str) -> Result<&'c ObservedContainer, Error> {
    containers.iter().find(|c| c.service == service && c.state == "running").ok_or_else(|| Error::Deploy {
        message: format!("service `{service}` is not running, so its data cannot be backed up online"),
        hint: Some("run `ragctl up` first".into()),
    })
}

/// Write the archive to `req.dest`; nothing is at `req.dest` unless it is complete.
pub async fn create(
    docker: &DockerClient,
    req: &BackupRequest<'_>,
    reporter: &dyn Reporter,
    guard: &Guard,
) -> Result<Manifest, Error> {
    let project = &req.desired.project;
    let containers = docker.list_containers(project).await?;
    let mut images = BTreeMap::new();
    for c in &containers {
        if !images.contains_key(&c.service) {
            let id = docker.image_id(&c.image).await?;
            images.insert(c.service.clone(), ImageRef { image: c.image.clone(), id });
        }
    }
    let release = match (
        super::data_release::location(req.desired),
        containers.iter().find(|c| c.service == super::data_release::SERVICE && c.number == 1),
    ) {
        (Some(at), Some(c)) => super::data_release::read_in(docker, &c.id, &c.name, &at.dir).await?.map(|r| r.release),
        _ => None,
    };
    let mut writer = ArchiveWriter::create(req.dir, &req.recipients)?;
    let mut members = Vec::new();

    for (name, path) in &req.files {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        let d = writer.append_bytes(name, &bytes)?;
        members.push(MemberEntry { name: name.clone(), size: d.size, sha256: d.sha256 });
    }

    let mut postgres = Vec::new();
    for spec in req.desired.containers.iter().filter(|s| PG_SERVICES.contains(&s.service.as_str()) && s.number == 1) {
        let c = running(&containers, &spec.service)?;
        postgres.push(dump_instance(docker, req, c, &mut writer, &mut members, reporter).await?);
    }

    let mut volumes = Vec::new();
    if let Some(spec) = req.desired.containers.iter().find(|s| s.service == "redis") {
        let c = running(&containers, "redis")?;
        let (_, _, mount) = named_mounts(req.desired, spec).into_iter().next().ok_or_else(|| {
            Error::config("service `redis` mounts no named volume: there is no snapshot to back up".to_string())
        })?;
        let path = redis_snapshot(docker, c).await?;
        let member_name = format!("redis/{}.tar", spec.service);
        let mut member = Member::new(&writer, member_name.clone(), req.dir, reporter)?;
        docker.archive_get(&c.id, &c.name, &path, &mut |b| member.write(b)).await?;
        member.finish(&mut writer, &mut members)?;
        let volume = named_mounts(req.desired, spec).into_iter().next().map(|m| m.0).unwrap_or_default();
        volumes.push(VolumeEntry {
            volume,
            service: spec.service.clone(),
            mount,
            path,
            kind: "redis_snapshot".into(),
            member: member_name,
        });
    }

    let mut seen = Vec::new();
    for spec in req.desired.containers.iter().filter(|s| !NOT_ARCHIVED.contains(&s.service.as_str())) {
        for (short, full, mount) in named_mounts(req.desired, spec) {
            if seen.contains(&short) {
                continue;
            }
            seen.push(short.clone());
            running(&containers, &spec.service)?;
            // Every running container that mounts the volume (api and worker share the app's storage) is paused.
            let writers: Vec<&ObservedContainer> = containers
                .iter()
                .filter(|c| c.state == "running")
                .filter(|c| {
                    req.desired.containers.iter().any(|s| {
                        s.service == c.service && named_mounts(req.desired, s).iter().any(|(_, f, _)| *f == full)
                    })
                })
                .collect();
            let member_name = format!("volumes/{short}.tar");
            let mut member = Member::new(&writer, member_name.clone(), req.dir, reporter)?;
            archive_volume(docker, guard, project, spec, &writers, &full, &mount, &mut |b| member.write(b)).await?;
            member.finish(&mut writer, &mut members)?;
            volumes.push(VolumeEntry {
                volume: short,
                service: spec.service.clone(),
                path: mount.clone(),
                mount,
                kind: "volume".into(),
                member: member_name,
            });
        }
    }

    let manifest = Manifest {
        format: super::FORMAT,
        ragctl_version: req.ragctl_version.to_string(),
        project: project.clone(),
        created: req.created.clone(),
        release,
        images,
        postgres,
        volumes,
        members,
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::config(format!("failed to encode the manifest: {e}")))?;
    writer.append_bytes(MANIFEST, &json)?;
    writer.commit(req.dest)?;
    Ok(manifest)
}

async fn dump_instance(
    docker: &DockerClient,
    req: &BackupRequest<'_>,
    c: &ObservedContainer,
    writer: &mut ArchiveWriter,
    members: &mut Vec<MemberEntry>,
    reporter: &dyn Reporter,
) -> Result<PgInstance, Error> {
    let status = docker.inspect(&c.id, &c.name).await?;
    let su = pg::superuser_of(&status.env);
    let major = pg::major(docker, &c.id, &c.name, &su).await?;
    let databases = pg::query(docker, &c.id, &c.name, &su, &su.list_databases()).await?;

    let globals_member = format!("postgres/{}/globals.sql", c.service);
    let mut member = Member::new(writer, globals_member.clone(), req.dir, reporter)?;
    let exit = docker.exec_stream_out(&c.id, &c.name, &su.dump_globals(), &su.env(), &mut |b| member.write(b)).await?;
    pg::check_exit("pg_dumpall -g", &c.name, &exit)?;
    member.finish(writer, members)?;

    let mut dumped = Vec::new();
    for db in databases {
        // Counted in the dump's own snapshot: the counts are exactly the dump's, whatever is written meanwhile.
        let name = format!("postgres/{}/{db}.dump", c.service);
        let mut member = Member::new(writer, name.clone(), req.dir, reporter)?;
        let tables = pg::dump_with_counts(docker, &c.id, &c.name, &su, &db, &mut |b| member.write(b)).await?;
        member.finish(writer, members)?;
        dumped.push(PgDatabase { name: db, member: name, tables });
    }
    Ok(PgInstance {
        service: c.service.clone(),
        image: c.image.clone(),
        major,
        superuser: su.user,
        globals_member,
        databases: dumped,
    })
}

/// BGSAVE and wait until LASTSAVE moves; returns the RDB file's path in the container.
async fn redis_snapshot(docker: &DockerClient, c: &ObservedContainer) -> Result<String, Error> {
    let cli = |args: &[&str]| -> Vec<String> { ["redis-cli"].iter().chain(args).map(|s| s.to_string()).collect() };
    let ask = |args: Vec<String>| async move {
        let out = docker.exec_captured(&c.id, &c.name, &args, &[]).await?;
        if out.exit_code != 0 || out.stdout.starts_with("ERR") || out.stdout.starts_with("NOAUTH") {
            return Err(Error::Deploy {
                message: format!(
                    "`{}` failed in `{}`: {}{}",
                    args.join(" "),
                    c.name,
                    out.stdout.trim(),
                    out.stderr.trim()
                ),
                hint: None,
            });
        }
        Ok::<String, Error>(out.stdout.trim().to_string())
    };
    let before = ask(cli(&["LASTSAVE"])).await?;
    // LASTSAVE has a resolution of one second: a save in the same second as the last one would not show.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reply = ask(cli(&["BGSAVE"])).await?;
    if !reply.contains("started") && !reply.contains("scheduled") {
        return Err(Error::Deploy { message: format!("Redis refused BGSAVE in `{}`: {reply}", c.name), hint: None });
    }
    let started = Instant::now();
    while ask(cli(&["LASTSAVE"])).await? == before {
        if started.elapsed() > BGSAVE_TIMEOUT {
            return Err(Error::Deploy {
                message: format!("Redis BGSAVE in `{}` did not finish within {}s", c.name, BGSAVE_TIMEOUT.as_secs()),
                hint: None,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let info = ask(cli(&["INFO", "persistence"])).await?;
    if !info.contains("rdb_last_bgsave_status:ok") {
        return Err(Error::Deploy { message: format!("Redis BGSAVE failed in `{}`", c.name), hint: None });
    }
    let config = |key: &'static str| {
        let ask = &ask;
        async move { ask(cli(&["CONFIG", "GET", key])).await.ok().and_then(|o| o.lines().nth(1).map(str::to_string)) }
    };
    let dir = config("dir").await.unwrap_or_else(|| "/data".into());
    let file = config("dbfilename").await.unwrap_or_else(|| "dump.rdb".into());
    Ok(format!("{}/{file}", dir.trim_end_matches('/')))
}

/// The volume's tar, read from a helper container that mounts it read-only while the services writing to it are
/// paused.
#[allow(clippy::too_many_arguments)]
async fn archive_volume(
    docker: &DockerClient,
    guard: &Guard,
    project: &str,
    spec: &ContainerSpec,
    writers: &[&ObservedContainer],
    full: &str,
    mount: &str,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    let helper =
        super::mount_helper(project, &format!("backup-{}", spec.service), &spec.image, format!("{full}:{mount}:ro"));
    guard.helper(&helper.name)?;
    docker.create_helper(&helper).await?;
    for c in writers {
        guard.pause(docker, &c.id, &c.name).await?;
    }
    let copied = docker.archive_get(&helper.name, &helper.name, mount, sink).await;
    for c in writers {
        guard.unpause(docker, &c.id, &c.name).await?;
    }
    guard.remove_helper(docker, &helper.name).await?;
    copied
}
