//! The archive file: a tar, zstd-compressed, optionally age-encrypted. Written under an unpredictable temporary
//! name in the target directory (created with O_EXCL, mode 0600) and renamed to its final name only once complete
//! and synced; read back member by member with each member's sha256.
//!
//! A member's size must be in its tar header before its bytes, and a dump's size is known only at its end: each
//! member is spooled first to an unlinked temporary file beside the archive (never in memory, never in the
//! container), hashed and compressed on the way (so compression runs while the dump is still being made, as in
//! `pg_dump | zstd`), then appended as it is. The archive is a sequence of zstd frames (each tar header, each
//! member's spooled frame, the padding), which zstd decodes as one stream: the tar.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::error::Error;

/// The first bytes of an age file and of a zstd frame.
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1";
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// zstd's level: the default (3) keeps up with a dump stream on one core.
const ZSTD_LEVEL: i32 = 3;
/// Prefix of the temporary names; `backup list` and `prune` skip them.
pub const TEMP_PREFIX: &str = ".ragctl-backup-";

/// A member's size and sha256, as computed while it was written or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digested {
    pub size: u64,
    pub sha256: String,
}

/// Counts and hashes what passes through.
pub struct Hashing<T> {
    inner: T,
    hasher: Sha256,
    size: u64,
}

impl<T> Hashing<T> {
    pub fn new(inner: T) -> Self {
        Hashing { inner, hasher: Sha256::new(), size: 0 }
    }

    pub fn digest(self) -> (T, Digested) {
        let sha256 = self.hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        (self.inner, Digested { size: self.size, sha256 })
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

impl<T: Write> Write for Hashing<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<T: Read> Read for Hashing<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// The file under the compression: plain, or age-encrypted to recipients.
enum Sink {
    Plain(BufWriter<File>),
    Age(age::stream::StreamWriter<BufWriter<File>>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Age(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Age(w) => w.flush(),
        }
    }
}

impl Sink {
    fn finish(self) -> io::Result<File> {
        let buffered = match self {
            Sink::Plain(w) => w,
            Sink::Age(w) => w.finish()?,
        };
        buffered.into_inner().map_err(|e| e.into_error())
    }
}

/// Parse `--encrypt-to` values (age X25519 recipients, `age1…`).
pub fn parse_recipients(values: &[String]) -> Result<Vec<age::x25519::Recipient>, Error> {
    values
        .iter()
        .map(|v| {
            age::x25519::Recipient::from_str(v.trim()).map_err(|e| {
                Error::config_hint(
                    format!("--encrypt-to `{v}` is not an age recipient: {e}"),
                    "pass an age X25519 public key (`age1…`, from `age-keygen`)",
                )
            })
        })
        .collect()
}

/// An archive being written: members go in one by one; [`ArchiveWriter::commit`] makes it visible.
pub struct ArchiveWriter {
    dir: PathBuf,
    temp: tempfile::NamedTempFile,
    /// The file (age-encrypted or not) that the zstd frames go to.
    sink: Sink,
}

/// A zstd encoder with a frame checksum: corruption shows as a read error in the member it hits, not only as a
/// bad sha256.
fn encoder<W: Write>(inner: W) -> io::Result<zstd::Encoder<'static, W>> {
    let mut encoder = zstd::Encoder::new(inner, ZSTD_LEVEL)?;
    encoder.include_checksum(true)?;
    Ok(encoder)
}

/// The tar bytes of a member's header (with GNU long-name entries when needed) followed by `data` and its padding.
fn tar_bytes(name: &str, size: u64, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0));
    header.set_entry_type(tar::EntryType::Regular);
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_data(&mut header, name, data)?;
    // Taken before the builder is dropped, which would append the end-of-archive blocks.
    Ok(std::mem::take(builder.get_mut()))
}

fn io_err<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> Error + 'p {
    move |e| Error::io(action, path, e)
}

impl ArchiveWriter {
    /// Start an archive in `dir` under a temporary name (O_EXCL, 0600).
    pub fn create(dir: &Path, recipients: &[age::x25519::Recipient]) -> Result<ArchiveWriter, Error> {
        remove_stale(dir);
        let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
        let temp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".partial")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(io_err("create a temporary file in", dir))?;
        let file = temp.as_file().try_clone().map_err(io_err("open", temp.path()))?;
        let buffered = BufWriter::with_capacity(1 << 20, file);
        let sink = if recipients.is_empty() {
            Sink::Plain(buffered)
        } else {
            let boxed: Vec<Box<dyn age::Recipient + Send>> =
                recipients.iter().map(|r| Box::new(r.clone()) as Box<dyn age::Recipient + Send>).collect();
            let encryptor = age::Encryptor::with_recipients(boxed.iter().map(|r| r.as_ref() as &dyn age::Recipient))
                .map_err(|e| Error::config(format!("failed to encrypt to the recipients: {e}")))?;
            Sink::Age(encryptor.wrap_output(buffered).map_err(io_err("write", temp.path()))?)
        };
        Ok(ArchiveWriter { dir: dir.to_path_buf(), temp, sink })
    }

    /// Compress `bytes` as one frame onto the archive.
    fn frame(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let path = self.temp.path().to_path_buf();
        let mut encoder = encoder(&mut self.sink).map_err(io_err("compress", &path))?;
        encoder.write_all(bytes).map_err(io_err("write", &path))?;
        encoder.finish().map(|_| ()).map_err(io_err("write", &path))
    }

    /// A spool for one member: an unlinked temporary file beside the archive, written compressed.
    pub fn spool(&self) -> Result<Spool, Error> {
        let file = tempfile::tempfile_in(&self.dir).map_err(io_err("create a temporary file in", &self.dir))?;
        let compressed = encoder(BufWriter::with_capacity(1 << 20, file)).map_err(io_err("compress", &self.dir))?;
        Ok(Spool { inner: Hashing::new(compressed), started: Instant::now() })
    }

    /// Append a spooled member under `name`: its header, its compressed bytes as spooled, its padding. Returns its
    /// size and sha256.
    pub fn append(&mut self, name: &str, spool: Spool) -> Result<Digested, Error> {
        let (compressed, digested) = spool.inner.digest();
        let buffered = compressed.finish().map_err(io_err("write a temporary file in", &self.dir))?;
        let mut file = buffered.into_inner().map_err(|e| Error::io("write", &self.dir, e.into_error()))?;
        file.rewind().map_err(io_err("read back", &self.dir))?;
        let header = tar_bytes(name, digested.size, &[]).map_err(io_err("write", &self.dir))?;
        self.frame(&header)?;
        let path = self.temp.path().to_path_buf();
        io::copy(&mut BufReader::with_capacity(1 << 20, file), &mut self.sink).map_err(io_err("write", &path))?;
        let padding = (512 - digested.size % 512) % 512;
        if padding > 0 {
            self.frame(&vec![0u8; padding as usize])?;
        }
        Ok(digested)
    }

    /// Append `bytes` (small members: the manifest, config files).
    pub fn append_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<Digested, Error> {
        let mut hashing = Hashing::new(io::sink());
        hashing.write_all(bytes).map_err(io_err("hash", &self.dir))?;
        let member = tar_bytes(name, bytes.len() as u64, bytes).map_err(io_err("write", &self.dir))?;
        self.frame(&member)?;
        Ok(hashing.digest().1)
    }

    /// Finish the archive (its end-of-archive blocks), sync the file, rename it to `dest` (never over an existing
    /// file) and sync the directory: `dest` exists only complete.
    pub fn commit(mut self, dest: &Path) -> Result<(), Error> {
        let path = self.temp.path().to_path_buf();
        self.frame(&[0u8; 1024])?;
        let file = self.sink.finish().map_err(io_err("write", &path))?;
        file.sync_all().map_err(io_err("sync", &path))?;
        self.temp.persist_noclobber(dest).map_err(|e| Error::io("rename into place", dest, e.error))?;
        let dir = File::open(&self.dir).map_err(io_err("open", &self.dir))?;
        dir.sync_all().map_err(io_err("sync", &self.dir))
    }
}

/// Remove the temporary files of backups killed outright (SIGKILL, a crash): `<prefix><pid>-….partial` whose
/// process is gone. A backup that ends in any other way removes its own.
fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(TEMP_PREFIX).filter(|_| name.ends_with(".partial")) else { continue };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| p != std::process::id() && !Path::new(&format!("/proc/{p}")).exists()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// One member on its way into the archive.
pub struct Spool {
    inner: Hashing<zstd::Encoder<'static, BufWriter<File>>>,
    pub started: Instant,
}

impl Spool {
    pub fn write(&mut self, bytes: &[u8], dir: &Path) -> Result<(), Error> {
        self.inner.write_all(bytes).map_err(io_err("write a temporary file in", dir))
    }

    pub fn size(&self) -> u64 {
        self.inner.size()
    }
}

/// How to read an archive: the age identities for an encrypted one.
pub type Identities = Vec<Box<dyn age::Identity>>;

/// Load `--identity` files (age identity files, as `age-keygen` writes them).
pub fn load_identities(paths: &[PathBuf]) -> Result<Identities, Error> {
    let mut all: Identities = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(io_err("read", path))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity = age::x25519::Identity::from_str(line).map_err(|e| Error::Parse {
                location: crate::error::SourceLocation::at(path.display().to_string(), n + 1, 1),
                message: format!("not an age identity: {e}"),
            })?;
            all.push(Box::new(identity));
        }
    }
    Ok(all)
}

/// The tar stream of an archive file, decrypted and decompressed.
pub fn open(path: &Path, identities: &Identities) -> Result<tar::Archive<Box<dyn Read>>, Error> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let mut buffered = BufReader::with_capacity(1 << 20, file);
    let head = io::BufRead::fill_buf(&mut buffered).map_err(io_err("read", path))?;
    let compressed: Box<dyn Read> = if head.starts_with(AGE_MAGIC) {
        if identities.is_empty() {
            return Err(Error::config_hint(
                format!("`{}` is encrypted", path.display()),
                "pass --identity FILE with the age identity of one of its recipients",
            ));
        }
        let decryptor = age::Decryptor::new_buffered(buffered)
            .map_err(|e| Error::config(format!("`{}` is not a readable age file: {e}", path.display())))?;
        let reader = decryptor
            .decrypt(identities.iter().map(|i| i.as_ref()))
            .map_err(|e| Error::config(format!("failed to decrypt `{}`: {e}", path.display())))?;
        Box::new(reader)
    } else if head.starts_with(&ZSTD_MAGIC) {
        Box::new(buffered)
    } else {
        return Err(Error::config(format!("`{}` is not a ragctl backup (neither zstd nor age)", path.display())));
    };
    let decoder = zstd::Decoder::new(compressed).map_err(io_err("decompress", path))?;
    Ok(tar::Archive::new(Box::new(decoder) as Box<dyn Read>))
}

/// `2026-12-01T21:43:49Z` and `20261201T214349Z` for a time since the epoch (UTC, no time zone database).
pub fn timestamps(at: SystemTime) -> (String, String) {
    let secs = at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
    let (h, m, s) = (t.hour(), t.minute(), t.second());
    (format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z"), format!("{y:04}{mo:02}{d:02}T{h:02}{m:02}{s:02}Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_civil_dates() {
        let at = UNIX_EPOCH + std::time::Duration::from_secs(1_796_161_429);
        assert_eq!(timestamps(at), ("2026-12-01T21:43:49Z".into(), "20261201T214349Z".into()));
        assert_eq!(timestamps(UNIX_EPOCH).0, "1970-01-01T00:00:00Z");
    }

    #[test]
    fn an_archive_round_trips_with_checksums_and_encryption() {
        let dir = tempfile::tempdir().unwrap();
        let key = age::x25519::Identity::generate();
        for recipients in [vec![], vec![key.to_public()]] {
            let mut w = ArchiveWriter::create(dir.path(), &recipients).unwrap();
            let mut spool = w.spool().unwrap();
            spool.write(b"hello ", dir.path()).unwrap();
            spool.write(b"world", dir.path()).unwrap();
            let d = w.append("a/b.dump", spool).unwrap();
            assert_eq!(d.size, 11);
            // A name longer than a tar header holds, and a member of more than one block.
            let long = format!("volumes/{}.tar", "v".repeat(120));
            let mut spool = w.spool().unwrap();
            spool.write(&vec![7u8; 1500], dir.path()).unwrap();
            w.append(&long, spool).unwrap();
            w.append_bytes("manifest.json", b"{}").unwrap();
            let dest = dir.path().join(format!("x{}.tar.zst", recipients.len()));
            w.commit(&dest).unwrap();
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777, 0o600);
            let ids: Identities = vec![Box::new(key.clone())];
            let mut archive = open(&dest, &ids).unwrap();
            let mut names = Vec::new();
            for entry in archive.entries().unwrap() {
                let entry = entry.unwrap();
                let name = entry.path().unwrap().display().to_string();
                let mut h = Hashing::new(entry);
                io::copy(&mut h, &mut io::sink()).unwrap();
                names.push((name, h.digest().1));
            }
            assert_eq!(names[0].1, d);
            assert_eq!(names[1].0, format!("volumes/{}.tar", "v".repeat(120)));
            assert_eq!(names[1].1.size, 1500);
            assert_eq!(names[2].0, "manifest.json");
            assert_eq!(names.len(), 3);
        }
        // Only the archives are left: spools are unlinked, the temporary name was renamed.
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(matches!(open(&dir.path().join("x1.tar.zst"), &Vec::new()), Err(Error::Config { .. })));
    }
}
