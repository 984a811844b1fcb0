//! Readiness ragctl has already proven, per container instance (`id@StartedAt`). A no-op `up` right after a
//! cold one would otherwise re-prove every service by exec (~100 ms each) while Docker's own healthcheck has
//! not run its first interval yet. A container that restarted has a new `StartedAt` and is proven again; one
//! that Docker reports unhealthy is never trusted. Losing the file only costs a re-probe.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn path(project: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ragctl-{project}.ready"))
}

pub fn key(id: &str, started_at: &str) -> String {
    format!("{id}@{started_at}")
}

pub fn load(project: &str) -> BTreeSet<String> {
    std::fs::read_to_string(path(project)).map(|t| t.lines().map(str::to_string).collect()).unwrap_or_default()
}

/// Best effort: a cache that cannot be written is a cache that is not used.
pub fn save(project: &str, proven: &BTreeSet<String>) {
    let text: String = proven.iter().map(|k| format!("{k}\n")).collect();
    let _ = crate::atomic_file::write_atomic(&path(project), text.as_bytes(), Some(0o600));
}
