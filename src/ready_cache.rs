//! Readiness ragctl has already proven, per container instance (`id@StartedAt`). A no-op `up` right after a
//! cold one would otherwise re-prove every service by exec (~100 ms each) while Docker's own healthcheck has
//! not run its first interval yet. A container that restarted has a new `StartedAt` and is proven again; one
//! that Docker reports unhealthy is never trusted. Losing the file only costs a re-probe.
//!
//! The cache lives in a directory only this user can write (the caller passes the project lock's private
//! directory): a cache file in the shared temp directory could be planted by anyone and would vouch for
//! containers nobody proved.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn path(dir: &Path, project: &str) -> PathBuf {
    dir.join(format!("{project}.ready"))
}

pub fn key(id: &str, started_at: &str) -> String {
    format!("{id}@{started_at}")
}

pub fn load(dir: &Path, project: &str) -> BTreeSet<String> {
    std::fs::read_to_string(path(dir, project)).map(|t| t.lines().map(str::to_string).collect()).unwrap_or_default()
}

/// Best effort: a cache that cannot be written is a cache that is not used.
pub fn save(dir: &Path, project: &str, proven: &BTreeSet<String>) {
    let text: String = proven.iter().map(|k| format!("{k}\n")).collect();
    let _ = crate::atomic_file::write_atomic(&path(dir, project), text.as_bytes(), Some(0o600));
}
