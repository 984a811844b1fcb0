//! The newest Dify release that ran against the project's data, recorded inside the data itself: two small JSON
//! copies in the PostgreSQL volume of `db_postgres` (the database Dify's migrations change). The record survives a
//! re-created project directory and a new project name; `up` refuses to run an older release on it.
//!
//! Where: at the root of the volume, beside the data directory. The profile (as Dify's compose) sets
//! `PGDATA=/var/lib/postgresql/data/pgdata` inside a volume mounted at `/var/lib/postgresql/data`, so the volume root
//! is not `PGDATA`: initdb, which refuses a non-empty `PGDATA` (dot files included), never sees the record. When
//! `PGDATA` is the mount itself the record goes inside `PGDATA`, which is only written once PostgreSQL has been
//! proven ready (so initdb has run); PostgreSQL ignores files it does not know there.
//!
//! Atomic: the archive API extracts into place, so a write killed halfway may leave a truncated file. There are
//! two copies (slots); each write goes to the slot of the older generation, and a reader takes the valid copy of the
//! highest generation. A torn copy is not valid JSON and is ignored: the previous record stands.

use std::cmp::Ordering;
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::docker::{DockerClient, HelperContainer};
use crate::engine::spec::{ContainerSpec, Desired};
use crate::error::Error;

/// The two copies, by generation parity.
pub const SLOTS: [&str; 2] = [".ragctl-release.0.json", ".ragctl-release.1.json"];
/// The service whose volume holds the record.
pub const SERVICE: &str = "db_postgres";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    /// The newest Dify release that ran against this data.
    pub release: String,
    /// The ragctl that wrote the record.
    pub ragctl_version: String,
    /// When, in seconds since the epoch.
    pub written_unix: u64,
    /// Raised by one on every write; the copy with the highest wins.
    pub generation: u64,
}

/// Where the record of `desired`'s data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The volume's full name.
    pub volume: String,
    /// Where the service mounts it.
    pub mount: String,
    /// The directory holding the copies.
    pub dir: String,
    pub image: String,
}

/// The record's location: `db_postgres`'s named volume holding `PGDATA`; `None` when the stack has none.
pub fn location(desired: &Desired) -> Option<Location> {
    let spec: &ContainerSpec = desired.containers.iter().find(|s| s.service == SERVICE && s.number == 1)?;
    let pgdata = spec
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PGDATA="))
        .unwrap_or("/var/lib/postgresql/data")
        .trim_end_matches('/')
        .to_string();
    let (_, volume, mount) = super::create::named_mounts(desired, spec).into_iter().find(|(_, _, mount)| {
        let mount = mount.trim_end_matches('/');
        pgdata == mount || pgdata.starts_with(&format!("{mount}/"))
    })?;
    let dir = mount.trim_end_matches('/').to_string();
    Some(Location { volume, mount, dir, image: spec.image.clone() })
}

/// What `up` does about the record, given the release it is about to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing recorded, or an older release: record the selected one once PostgreSQL is ready.
    Raise,
    /// The same release: nothing to write.
    Keep,
    /// An older release, allowed by `--allow-downgrade`: record it (the only way the record goes down).
    Lower,
}

/// Refuse (exit 1, with the fix) to run `selected` on data last run by a newer release, unless `allow_downgrade`.
pub fn decide(recorded: Option<&str>, selected: &str, allow_downgrade: bool) -> Result<Decision, Error> {
    let Some(recorded) = recorded else { return Ok(Decision::Raise) };
    match crate::version::compare(selected, recorded) {
        Some(Ordering::Equal) => Ok(Decision::Keep),
        Some(Ordering::Greater) => Ok(Decision::Raise),
        _ if allow_downgrade => Ok(Decision::Lower),
        Some(Ordering::Less) => Err(refusal(recorded, selected)),
        None => Err(Error::Deploy {
            message: format!(
                "this data was last run by Dify `{recorded}`, which cannot be compared with release `{selected}`; nothing was started"
            ),
            hint: Some(format!("set `release: {recorded}` in ragctl.yaml, or pass --allow-downgrade")),
        }),
    }
}

fn refusal(recorded: &str, selected: &str) -> Error {
    Error::Deploy {
        message: format!(
            "this data was last run by Dify {recorded}; release {selected} is older: its API would run against a \
             database that {recorded} already migrated; nothing was started"
        ),
        hint: Some(format!(
            "set `release: {recorded}` in ragctl.yaml (or RAGCTL_RELEASE={recorded}), or restore a backup taken \
             before the upgrade, or pass --allow-downgrade"
        )),
    }
}

/// The valid copy of the highest generation; torn or foreign copies are ignored.
pub fn newest(copies: impl IntoIterator<Item = Vec<u8>>) -> Option<ReleaseRecord> {
    copies
        .into_iter()
        .filter_map(|bytes| serde_json::from_slice::<ReleaseRecord>(&bytes).ok())
        .max_by_key(|r| r.generation)
}

/// The record of the data mounted at `dir` in container `id` (running or stopped).
pub async fn read_in(docker: &DockerClient, id: &str, name: &str, dir: &str) -> Result<Option<ReleaseRecord>, Error> {
    let mut copies = Vec::new();
    for slot in SLOTS {
        let mut tar_bytes = Vec::new();
        let read = docker
            .archive_get(id, name, &format!("{dir}/{slot}"), &mut |b| {
                if tar_bytes.len() < 1 << 20 {
                    tar_bytes.extend_from_slice(b);
                }
                Ok(())
            })
            .await;
        match read {
            Ok(()) => {}
            // No such copy; any other failure is not "nothing recorded" and is reported.
            Err(Error::Docker { cause, .. }) if cause.ends_with("(HTTP 404)") => continue,
            Err(e) => return Err(e),
        }
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        if let Some(Ok(entry)) = archive.entries().ok().and_then(|mut e| e.next()) {
            let mut bytes = Vec::new();
            if entry.take(64 * 1024).read_to_end(&mut bytes).is_ok() {
                copies.push(bytes);
            }
        }
    }
    Ok(newest(copies))
}

/// Write `release` as the next generation after `current`, into the slot of the older copy.
pub async fn write_in(
    docker: &DockerClient,
    id: &str,
    name: &str,
    dir: &str,
    current: Option<&ReleaseRecord>,
    release: &str,
) -> Result<ReleaseRecord, Error> {
    // The generation continues from what the volume holds now, whatever the caller last saw (a cache).
    let fresh = read_in(docker, id, name, dir).await?;
    let base = [current.map(|c| c.generation), fresh.map(|f| f.generation)].into_iter().flatten().max();
    let record = ReleaseRecord {
        release: release.to_string(),
        ragctl_version: env!("CARGO_PKG_VERSION").to_string(),
        written_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        generation: base.map_or(1, |g| g + 1),
    };
    let json = serde_json::to_vec(&record).map_err(|e| Error::config(format!("failed to encode JSON: {e}")))?;
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(json.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(record.written_unix);
    let slot = SLOTS[(record.generation % 2) as usize];
    builder
        .append_data(&mut header, slot, &json[..])
        .map_err(|e| Error::config(format!("failed to build the release record: {e}")))?;
    let tar_bytes =
        builder.into_inner().map_err(|e| Error::config(format!("failed to build the release record: {e}")))?;
    docker.archive_put(id, name, dir, &mut std::io::Cursor::new(tar_bytes)).await?;
    Ok(record)
}

/// A helper container (never started) mounting the record's volume, for when no container of the service exists.
fn helper(project: &str, at: &Location, read_only: bool) -> HelperContainer {
    super::mount_helper(
        project,
        "release",
        &at.image,
        format!("{}:{}{}", at.volume, at.mount, if read_only { ":ro" } else { "" }),
    )
}

/// The record in the volume, read through a helper container.
pub async fn read_volume(docker: &DockerClient, project: &str, at: &Location) -> Result<Option<ReleaseRecord>, Error> {
    let h = helper(project, at, true);
    docker.create_helper(&h).await?;
    let read = read_in(docker, &h.name, &h.name, &at.dir).await;
    docker.remove(&h.name, &h.name, true).await?;
    read
}

/// Write the next record into the volume through a helper container.
pub async fn write_volume(
    docker: &DockerClient,
    project: &str,
    at: &Location,
    current: Option<&ReleaseRecord>,
    release: &str,
) -> Result<ReleaseRecord, Error> {
    let h = helper(project, at, false);
    docker.create_helper(&h).await?;
    let written = write_in(docker, &h.name, &h.name, &at.dir, current, release).await;
    docker.remove(&h.name, &h.name, true).await?;
    written
}

/// The record last read or written for the project, with the `db_postgres` container it was read through, in
/// the private state directory (`<project>.release`). While that container stays (a no-op `up`), its volume and so
/// its record are the ones already known: `up` compares without reading.
#[derive(Debug, Serialize, Deserialize)]
struct Cached {
    container: String,
    record: Option<ReleaseRecord>,
}

fn cache_path(dir: &std::path::Path, project: &str) -> std::path::PathBuf {
    dir.join(format!("{project}.release"))
}

/// The cached record when it was read through `container`; `None` when it must be read.
pub fn cached(dir: &std::path::Path, project: &str, container: &str) -> Option<Option<ReleaseRecord>> {
    let text = std::fs::read(cache_path(dir, project)).ok()?;
    let cached: Cached = serde_json::from_slice(&text).ok()?;
    (cached.container == container).then_some(cached.record)
}

/// Best effort: a cache that cannot be written only costs a read next time.
pub fn remember(dir: &std::path::Path, project: &str, container: &str, record: Option<&ReleaseRecord>) {
    let cached = Cached { container: container.to_string(), record: record.cloned() };
    if let Ok(text) = serde_json::to_vec(&cached) {
        let _ = crate::atomic_file::write_atomic(&cache_path(dir, project), &text, Some(0o600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_release_is_refused_with_the_fix_unless_allowed() {
        assert_eq!(decide(None, "1.13.3", false).unwrap(), Decision::Raise);
        assert_eq!(decide(Some("1.10.1-fix.1"), "1.13.3", false).unwrap(), Decision::Raise);
        assert_eq!(decide(Some("1.13.3"), "1.13.3", false).unwrap(), Decision::Keep);
        let err = decide(Some("1.13.3"), "1.10.1-fix.1", false).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        let text = format!("{err} {}", err.hint().unwrap_or_default());
        assert!(text.contains("this data was last run by Dify 1.13.3; release 1.10.1-fix.1 is older"), "{text}");
        assert!(text.contains("`release: 1.13.3` in ragctl.yaml"), "{text}");
        assert!(text.contains("--allow-downgrade"), "{text}");
        assert_eq!(decide(Some("1.13.3"), "1.10.1-fix.1", true).unwrap(), Decision::Lower);
        assert_eq!(decide(Some("1.13.10"), "1.13.3", true).unwrap(), Decision::Lower);
        assert!(decide(Some("garbage"), "1.13.3", false).is_err());
    }

    #[test]
    fn the_cache_serves_only_the_container_it_was_read_through() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(cached(dir.path(), "p", "c1"), None);
        let r = ReleaseRecord { release: "1.13.3".into(), ragctl_version: "x".into(), written_unix: 0, generation: 4 };
        remember(dir.path(), "p", "c1", Some(&r));
        assert_eq!(cached(dir.path(), "p", "c1"), Some(Some(r)));
        assert_eq!(cached(dir.path(), "p", "c2"), None);
        assert_eq!(cached(dir.path(), "q", "c1"), None);
        remember(dir.path(), "p", "c2", None);
        assert_eq!(cached(dir.path(), "p", "c2"), Some(None));
    }

    #[test]
    fn the_valid_copy_of_the_highest_generation_wins_and_a_torn_one_is_ignored() {
        let rec = |release: &str, generation: u64| ReleaseRecord {
            release: release.into(),
            ragctl_version: "0.1.0".into(),
            written_unix: 1,
            generation,
        };
        let bytes = |r: &ReleaseRecord| serde_json::to_vec(r).unwrap();
        let (old, new) = (rec("1.10.1-fix.1", 1), rec("1.13.3", 2));
        assert_eq!(newest([bytes(&old), bytes(&new)]), Some(new.clone()));
        assert_eq!(newest([bytes(&new), bytes(&old)]), Some(new.clone()));
        let full = bytes(&rec("1.13.10", 3));
        for cut in 0..full.len() {
            assert_eq!(newest([full[..cut].to_vec(), bytes(&new)]), Some(new.clone()), "torn at {cut}");
        }
        assert_eq!(newest(Vec::<Vec<u8>>::new()), None);
    }
}
