//! Atomic file replacement: write a sibling temp file, fsync it, rename it over the target, fsync the directory.
//!
//! Every file ragctl writes (`.env`, rendered files, backups) goes through here so a crash, a full disk or a
//! SIGKILL leaves either the old complete file or the new complete file, never a half-written one.
//! This module must not decide *what* to write or whether overwriting is allowed; callers do.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Replace `path` with `contents` atomically. `mode` sets the permission bits of the new file (e.g. `0o600`
/// for `.env`); `None` keeps the mode of an existing file, or uses `0o644` for a new one.
pub fn write_atomic(path: &Path, contents: &[u8], mode: Option<u32>) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file_name =
        path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mode = match mode {
        Some(m) => m,
        None => existing_mode(path).unwrap_or(0o644),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".ragctl-tmp-{}", std::process::id()));
    let tmp_path = dir.join(tmp_name);
    remove_stale_temp_files(dir, file_name);

    let result = (|| {
        let mut file = create_with_mode(&tmp_path, mode)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp_path, path)?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

/// A writer killed between create and rename leaves its temp file (which may hold secrets) behind; remove
/// those whose process is gone.
fn remove_stale_temp_files(dir: &Path, file_name: &std::ffi::OsStr) {
    let prefix = format!(".{}.ragctl-tmp-", file_name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
        let alive = pid.parse::<u32>().is_ok_and(|pid| pid == std::process::id() || process_alive(pid));
        if !alive {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(target_os = "linux")]
fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(not(target_os = "linux"))]
fn process_alive(_pid: u32) -> bool {
    true // cannot tell cheaply: keep the file
}

#[cfg(unix)]
fn create_with_mode(path: &Path, mode: u32) -> io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
    // The umask may have removed bits from `mode`; set exactly what was asked.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(file)
}

#[cfg(not(unix))]
fn create_with_mode(path: &Path, _mode: u32) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn existing_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn existing_mode(_path: &Path) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_contents_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        fs::write(&path, "OLD=1\n").unwrap();
        write_atomic(&path, b"NEW=2\n", Some(0o600)).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "NEW=2\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // No temp file left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn temp_files_of_dead_writers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        // pid 4194305 is above Linux's pid_max limit, so it is never alive.
        let stale = dir.path().join("..env.ragctl-tmp-4194305");
        let other = dir.path().join(".other.ragctl-tmp-4194305");
        fs::write(&stale, "SECRET=old").unwrap();
        fs::write(&other, "x").unwrap();
        write_atomic(&path, b"A=1\n", Some(0o600)).unwrap();
        assert!(!stale.exists());
        assert!(other.exists(), "temp files of other targets are left alone");
    }

    #[cfg(unix)]
    #[test]
    fn read_only_directory_leaves_original_intact() {
        use std::os::unix::fs::PermissionsExt;
        if rustix_is_root() {
            return; // root ignores directory permissions; the property cannot be observed
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, "keep").unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o500)).unwrap();
        let err = write_atomic(&path, b"new", None);
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        assert!(err.is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "keep");
    }

    #[cfg(unix)]
    fn rustix_is_root() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
            .unwrap_or(false)
    }
}
