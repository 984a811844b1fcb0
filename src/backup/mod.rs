//! The data lifecycle: `backup` (one archive of the running stack's data, consistent and online where the
//! service allows), `backup verify` (checksums; `--deep` restores the dumps into a throwaway container), `restore`
//! (volumes re-created empty, dumps and volume contents put back) and the archives' listing and pruning.
//!
//! What is saved, per service of the stack:
//! - a PostgreSQL instance (`db_postgres`, the primary under pg_cluster; `pgvector`): its roles (`pg_dumpall -g`)
//!   and a custom-format `pg_dump` of every database, made by the image's own tools in the container and streamed
//!   out through the Engine API;
//! - Redis: a fresh RDB (BGSAVE, LASTSAVE changed), copied through the archive API;
//! - any other stateful service: each named volume it mounts, as the Engine's tar of the mount (owners, modes,
//!   symlinks kept), read from a helper container mounting the volume while the service is paused.
//!
//! Docker is reached only through [`crate::docker`], PostgreSQL's command lines come from [`crate::postgres`].
//! Paused services are recorded in the private state directory before they are paused ([`paused`]): an
//! interrupted backup resumes them, and one killed outright is resumed by the next ragctl command.

pub mod adopt;
pub mod archive;
mod create;
pub mod data_release;
pub mod guard;
pub mod paused;
mod pg;
mod restore;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;

pub use create::{BackupRequest, create};
pub use restore::{RowCheck, Verified, check_row_counts, read_small_members, restore_data, verify, verify_deep};

/// The manifest's own format version.
pub const FORMAT: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
/// The archive's extension (`.age` appended when encrypted).
pub const EXTENSION: &str = ".tar.zst";
/// The members holding the project's `.env` and `ragctl.yaml`.
pub const MEMBER_ENV: &str = "config/.env";
pub const MEMBER_PROJECT_FILE: &str = "config/ragctl.yaml";
/// Label of helper and throwaway containers: the project they work for.
pub const LABEL_HELPER: &str = "org.ragctl.backup-helper";

/// A helper container that is never started: `image` with one bind (`source:/path`, `:ro` to read only), named
/// `<project>-<purpose>-<pid>` and labelled with [`LABEL_HELPER`], so the next command removes it after a kill.
pub(crate) fn mount_helper(project: &str, purpose: &str, image: &str, bind: String) -> crate::docker::HelperContainer {
    crate::docker::HelperContainer {
        name: format!("{project}-{purpose}-{}", std::process::id()),
        image: image.to_string(),
        env: Vec::new(),
        cmd: None,
        entrypoint: None,
        user: None,
        binds: vec![bind],
        labels: BTreeMap::from([(LABEL_HELPER.to_string(), project.to_string())]),
    }
}

/// What the archive holds; its last member.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub ragctl_version: String,
    pub project: String,
    pub created: String,
    /// The newest Dify release that ran against the data (its record, see [`data_release`]), when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Service → the image it ran and that image's id.
    pub images: BTreeMap<String, ImageRef>,
    pub postgres: Vec<PgInstance>,
    pub volumes: Vec<VolumeEntry>,
    /// Every other member, in archive order, with its size and sha256.
    pub members: Vec<MemberEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRef {
    pub image: String,
    pub id: String,
}

/// One PostgreSQL service and its dumps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PgInstance {
    pub service: String,
    pub image: String,
    pub major: u32,
    /// The superuser the tools ran as (the image's `POSTGRES_USER`).
    pub superuser: String,
    /// `pg_dumpall -g` (roles, tablespaces).
    pub globals_member: String,
    pub databases: Vec<PgDatabase>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PgDatabase {
    pub name: String,
    pub member: String,
    /// `schema.table` → rows, counted when the dump was made.
    pub tables: BTreeMap<String, u64>,
}

/// A named volume's contents (or Redis's snapshot) as the Engine's tar of `path` in the service's container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeEntry {
    /// The volume's name in the stack (without the project prefix).
    pub volume: String,
    pub service: String,
    /// Where the service mounts it.
    pub mount: String,
    /// What was archived: the mount itself, or Redis's RDB file in it.
    pub path: String,
    /// `volume` or `redis_snapshot`.
    pub kind: String,
    pub member: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEntry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// The directory a path's archive is extracted into: the Engine's tar of `/a/b` holds `b/…`.
pub fn parent_of(path: &str) -> String {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".to_string(),
        Some((parent, _)) => parent.to_string(),
    }
}

/// An archive in the backups directory.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub path: PathBuf,
    pub name: String,
    pub size: u64,
    /// Seconds since the epoch of its last change.
    pub modified: u64,
    pub encrypted: bool,
}

/// The archives in `dir`, newest first; temporary (partial) files are not archives.
pub fn list(dir: &Path) -> Result<Vec<Listed>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let encrypted = name.ends_with(&format!("{EXTENSION}.age"));
        if name.starts_with(archive::TEMP_PREFIX) || !(name.ends_with(EXTENSION) || encrypted) {
            continue;
        }
        let meta = entry.metadata().map_err(|e| Error::io("inspect", entry.path(), e))?;
        if !meta.is_file() {
            continue;
        }
        let modified = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or(0);
        out.push(Listed { path: entry.path(), name, size: meta.len(), modified, encrypted });
    }
    // Names carry a sortable UTC timestamp; ties (same second) fall back to the name.
    out.sort_by(|a, b| (b.modified, &b.name).cmp(&(a.modified, &a.name)));
    Ok(out)
}

/// Remove all but the `keep` newest archives of `dir`; returns the removed ones.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<Listed>, Error> {
    let all = list(dir)?;
    let doomed: Vec<Listed> = all.into_iter().skip(keep).collect();
    for a in &doomed {
        std::fs::remove_file(&a.path).map_err(|e| Error::io("remove", &a.path, e))?;
    }
    Ok(doomed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_extracted_into_its_parent() {
        assert_eq!(parent_of("/var/lib/weaviate"), "/var/lib");
        assert_eq!(parent_of("/data/dump.rdb"), "/data");
        assert_eq!(parent_of("/data/"), "/");
    }

    #[test]
    fn list_skips_partial_files_and_prune_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for (i, name) in ["p-20260101T000000Z.tar.zst", "p-20260102T000000Z.tar.zst.age", "p-20260103T000000Z.tar.zst"]
            .iter()
            .enumerate()
        {
            let path = dir.path().join(name);
            std::fs::write(&path, b"x").unwrap();
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i as u64);
            File::options().write(true).open(&path).unwrap().set_modified(t).unwrap();
        }
        std::fs::write(dir.path().join(".ragctl-backup-abc.partial"), b"x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let names: Vec<String> = list(dir.path()).unwrap().into_iter().map(|l| l.name).collect();
        assert_eq!(
            names,
            ["p-20260103T000000Z.tar.zst", "p-20260102T000000Z.tar.zst.age", "p-20260101T000000Z.tar.zst"]
        );
        let removed = prune(dir.path(), 1).unwrap();
        assert_eq!(removed.len(), 2);
        assert_eq!(list(dir.path()).unwrap().len(), 1);
        assert!(dir.path().join(".ragctl-backup-abc.partial").exists());
        assert!(list(&dir.path().join("none")).unwrap().is_empty());
    }

    use std::fs::File;
}
