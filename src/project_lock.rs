//! Serialize `up` / `down` / `restart` of one project: two at once would race on the same containers.
//! An advisory lock on `<tmp>/ragctl-<uid>/<project>.lock`; the second caller says what it waits for, then waits.
//! The OS drops the lock when the process dies, so a killed ragctl never wedges it.
//!
//! The temp directory is shared with every user of the machine, and ragctl often runs as root: this module must
//! never follow a symbolic link or write into a file someone else could have planted. The lock lives in a
//! directory only this user can write (created 0700, checked to be a real directory of ours on every use); the
//! file is opened with `O_NOFOLLOW`, created 0600, and written only once the lock is held.

use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;

pub struct ProjectLock {
    _file: File,
}

/// The directory of this user's project locks: `<tmp>/ragctl-<uid>`.
pub fn lock_dir() -> PathBuf {
    std::env::temp_dir().join(format!("ragctl-{}", rustix::process::geteuid().as_raw()))
}

/// This user's private state directory (the lock directory), created 0700 and checked like the lock's: other
/// per-user state (the readiness cache) lives here rather than in the shared temp directory.
pub fn private_state_dir() -> Result<PathBuf, Error> {
    let dir = lock_dir();
    private_dir(&dir)?;
    Ok(dir)
}

pub fn lock_path(project: &str) -> PathBuf {
    lock_dir().join(format!("{project}.lock"))
}

/// Take the project's lock, calling `waiting(holder)` once if another process holds it.
pub fn acquire(project: &str, operation: &str, waiting: impl FnOnce(Option<String>)) -> Result<ProjectLock, Error> {
    acquire_in(&lock_dir(), project, operation, waiting)
}

fn acquire_in(
    dir: &Path,
    project: &str,
    operation: &str,
    waiting: impl FnOnce(Option<String>),
) -> Result<ProjectLock, Error> {
    private_dir(dir)?;
    let path = dir.join(format!("{project}.lock"));
    let mut file = open_own_file(&path)?;
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
    // Say who holds it, for the next waiter. The file is ours and the lock is held: replacing its text is safe.
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{} (ragctl {operation}, pid {})", project, std::process::id());
    let _ = file.flush();
    Ok(ProjectLock { _file: file })
}

/// Make sure `dir` is a directory of this user that nobody else can write into, creating it (0700) if needed.
fn private_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io("create directory", dir, e)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| Error::io("inspect", dir, e))?;
    let unsafe_dir = |reason| Err(Error::UnsafePath { path: dir.to_path_buf(), reason });
    if meta.file_type().is_symlink() {
        return unsafe_dir("it is a symbolic link, not a directory of this user");
    }
    if !meta.is_dir() {
        return unsafe_dir("it is not a directory");
    }
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return unsafe_dir("another user owns it");
    }
    if meta.mode() & 0o022 != 0 {
        return unsafe_dir("other users can write into it");
    }
    Ok(())
}

/// Open (or create, 0600) the lock file without following a symbolic link, and check that it is a regular file
/// of ours. Nothing is truncated here: a file is only written once it is known to be ours and locked.
fn open_own_file(path: &Path) -> Result<File, Error> {
    use rustix::fs::{Mode, OFlags};
    use std::os::unix::fs::MetadataExt;
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, Mode::from_raw_mode(0o600)) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::LOOP) => {
            return Err(Error::UnsafePath { path: path.to_path_buf(), reason: "it is a symbolic link" });
        }
        Err(e) => return Err(Error::io("open lock file", path, io::Error::from(e))),
    };
    let file = File::from(fd);
    let meta = file.metadata().map_err(|e| Error::io("inspect", path, e))?;
    if !meta.is_file() {
        return Err(Error::UnsafePath { path: path.to_path_buf(), reason: "it is not a regular file" });
    }
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(Error::UnsafePath { path: path.to_path_buf(), reason: "another user owns it" });
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

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

    #[test]
    fn a_new_lock_directory_and_file_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("locks");
        let lock = acquire_in(&dir, "p", "up", |_| panic!("nobody holds it")).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(dir.join("p.lock")).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(dir.join("p.lock")).unwrap(),
            format!("p (ragctl up, pid {})", std::process::id())
        );
        drop(lock);
    }

    #[test]
    fn a_symlink_at_the_lock_file_is_refused_and_its_target_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("locks");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        symlink(&victim, dir.join("p.lock")).unwrap();

        let err = acquire_in(&dir, "p", "down", |_| {}).err().expect("refused");

        assert!(matches!(&err, Error::UnsafePath { path, .. } if path == &dir.join("p.lock")), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("refusing to use `{}`: it is a symbolic link", dir.join("p.lock").display())
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn a_lock_directory_that_is_a_symlink_or_writable_by_others_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
        let linked = tmp.path().join("linked");
        symlink(&elsewhere, &linked).unwrap();
        let err = acquire_in(&linked, "p", "up", |_| {}).err().expect("refused");
        assert!(err.to_string().contains("it is a symbolic link, not a directory of this user"), "{err}");
        assert!(!elsewhere.join("p.lock").exists(), "nothing was created through the link");

        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = acquire_in(&shared, "p", "up", |_| {}).err().expect("refused");
        assert!(err.to_string().contains("other users can write into it"), "{err}");
        assert_eq!(err.exit_code(), crate::error::exit::FAILURE);
        assert!(err.hint().is_some_and(|h| h.contains("rm -r")), "{:?}", err.hint());
        assert!(!shared.join("p.lock").exists());
    }
}
