//! Services a backup paused and helper containers it created, recorded in the private state directory *before*
//! the pause or the creation: the backup resumes and removes them when it ends, fails or is interrupted; a
//! backup killed outright (SIGKILL, a crash) leaves the record, and the next ragctl command resumes them.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::docker::DockerClient;
use crate::error::Error;

const PREFIX: &str = "backup-paused-";

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Record {
    /// (id, name) of containers paused.
    paused: Vec<(String, String)>,
    /// (id, name) of helper containers to remove.
    helpers: Vec<(String, String)>,
}

/// The record of one backup in progress.
pub struct Guard {
    path: PathBuf,
    record: Mutex<Record>,
}

fn record_path(dir: &Path, project: &str) -> PathBuf {
    dir.join(format!("{PREFIX}{project}-{}.json", std::process::id()))
}

impl Guard {
    pub fn new(project: &str) -> Result<Guard, Error> {
        let dir = crate::project_lock::private_state_dir()?;
        Ok(Guard { path: record_path(&dir, project), record: Mutex::new(Record::default()) })
    }

    fn save(&self, record: &Record) -> Result<(), Error> {
        let text = serde_json::to_vec(record).map_err(|e| Error::config(format!("failed to encode state: {e}")))?;
        crate::atomic_file::write_atomic(&self.path, &text, Some(0o600)).map_err(|e| Error::io("write", &self.path, e))
    }

    fn update(&self, change: impl FnOnce(&mut Record)) -> Result<(), Error> {
        let mut record = self.record.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut record);
        self.save(&record)
    }

    /// Record, then pause.
    pub async fn pause(&self, docker: &DockerClient, id: &str, name: &str) -> Result<(), Error> {
        self.update(|r| r.paused.push((id.into(), name.into())))?;
        docker.pause(id, name).await
    }

    /// Resume one paused container now (the rest of the backup does not need it paused).
    pub async fn unpause(&self, docker: &DockerClient, id: &str, name: &str) -> Result<(), Error> {
        docker.unpause(id, name).await?;
        self.update(|r| r.paused.retain(|(i, _)| i != id))
    }

    /// Record a helper container about to be created (by name: its id is not known yet).
    pub fn helper(&self, name: &str) -> Result<(), Error> {
        self.update(|r| r.helpers.push((String::new(), name.into())))
    }

    pub async fn remove_helper(&self, docker: &DockerClient, name: &str) -> Result<(), Error> {
        docker.remove(name, name, true).await?;
        self.update(|r| r.helpers.retain(|(_, n)| n != name))
    }

    /// Resume everything still recorded and forget the record. Returns the names of the containers resumed.
    pub async fn release(&self, docker: &DockerClient) -> Result<Vec<String>, Error> {
        let record = self.record.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let resumed = undo(docker, &record).await?;
        let _ = std::fs::remove_file(&self.path);
        Ok(resumed)
    }
}

async fn undo(docker: &DockerClient, record: &Record) -> Result<Vec<String>, Error> {
    let mut first_error = None;
    for (id, name) in &record.paused {
        if let Err(e) = docker.unpause(id, name).await {
            first_error.get_or_insert(e);
        }
    }
    for (_, name) in &record.helpers {
        if let Err(e) = docker.remove(name, name, true).await {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(record.paused.iter().map(|(_, n)| n.clone()).collect()),
    }
}

/// Whether a killed backup left something to resume (a file check: no Docker needed to answer).
pub fn pending() -> bool {
    let dir = crate::project_lock::lock_dir();
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with(PREFIX)))
        .unwrap_or(false)
}

/// Resume what killed backups left paused and remove their helpers, unless their process still runs. Returns the
/// names of the containers resumed.
pub async fn recover(docker: &DockerClient) -> Result<Vec<String>, Error> {
    let dir = crate::project_lock::private_state_dir()?;
    let entries = std::fs::read_dir(&dir).map_err(|e| Error::io("read directory", &dir, e))?;
    let mut resumed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX).and_then(|r| r.strip_suffix(".json")) else { continue };
        let pid: Option<i32> = rest.rsplit_once('-').and_then(|(_, p)| p.parse().ok());
        if pid.is_some_and(|p| p != std::process::id() as i32 && Path::new(&format!("/proc/{p}")).exists()) {
            continue; // that backup is still running
        }
        let path = entry.path();
        let record: Record =
            std::fs::read(&path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
        resumed.extend(undo(docker, &record).await?);
        let _ = std::fs::remove_file(&path);
    }
    Ok(resumed)
}
