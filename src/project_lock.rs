//! Serialize `up` / `down` / `restart` of one project: two at once would race on the same containers.
//! An advisory lock on a file named after the project in the temp directory; the second caller says what
//! it waits for, then waits. The OS drops the lock when the process dies, so a killed ragctl never wedges it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;

use crate::error::Error;

pub struct ProjectLock {
    _file: File,
}

pub fn lock_path(project: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ragctl-{project}.lock"))
}

/// Take the project's lock, calling `waiting(holder_pid)` once if another process holds it.
pub fn acquire(project: &str, operation: &str, waiting: impl FnOnce(Option<String>)) -> Result<ProjectLock, Error> {
    let path = lock_path(project);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io("open lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            waiting(Some(holder.trim().to_string()).filter(|h| !h.is_empty()));
            file.lock().map_err(|e| Error::io("lock", &path, e))?;
        }
        Err(TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
    }
    // Say who holds it, for the next waiter.
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{} (ragctl {operation}, pid {})", project, std::process::id());
    let _ = file.flush();
    Ok(ProjectLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_and_is_told_who_holds_it() {
        let project = format!("locktest-{}", std::process::id());
        let first = acquire(&project, "up", |_| panic!("the first caller must not wait")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let p = project.clone();
        let waiter = std::thread::spawn(move || {
            let _second = acquire(&p, "down", |holder| tx.send(holder).unwrap()).unwrap();
        });
        let holder = rx.recv().unwrap().unwrap();
        assert!(holder.contains("ragctl up"), "{holder}");
        drop(first);
        waiter.join().unwrap();
        let _ = std::fs::remove_file(lock_path(&project));
    }
}
