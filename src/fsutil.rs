//! Durable file output: write to a temporary name in the destination directory, fsync, then
//! rename into place and fsync the directory. A killed process leaves at most a stray
//! temporary file (named `.callrec-*.tmp`), never a half-written file under a final name.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

/// Read buffer for streaming media through SHA-256. Small enough to stay in the CPU's L2
/// cache between the read and the hash: measured on the 2-core CI machine, 64 KiB hashes a
/// cached 1 GiB file in 0.79 s where 128 KiB and up take 1.3 s (`scripts/bench-seal`).
pub const IO_BUFFER: usize = 64 << 10;

/// Random access to bytes: a local file, or an object in the archive read with ranged requests.
pub trait ReadAt: Send + Sync {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

impl ReadAt for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

/// Open an existing file for reading, refusing anything but a regular file *before* reading
/// from it: a named pipe, a device or a socket given as input would otherwise block or never
/// end. The open does not block (`O_NONBLOCK`, so a FIFO with no writer cannot hang it), and
/// the check is `fstat` on the open handle, so a swap between check and open is caught.
/// `O_NONBLOCK` has no effect on reads from a regular file.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a named pipe, device or directory cannot be a record)",
        ));
    }
    Ok(file)
}

/// Write a new file `dest` from `src`: through a temporary file, fsynced, renamed into place
/// only if `dest` does not exist.
pub fn copy_new(mut src: impl Read, dest: &Path) -> io::Result<()> {
    let mut temp = temp_in(parent_dir(dest))?;
    io::copy(&mut src, &mut temp)?;
    persist_noclobber(temp, dest)
}

/// Copy everything from `src` to `dst`, returning its SHA-256 and length.
pub fn copy_hashing(mut src: impl Read, mut dst: impl Write) -> io::Result<([u8; 32], u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; IO_BUFFER];
    let mut total = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n])?;
        total += n as u64;
    }
    Ok((hasher.finalize().into(), total))
}

/// Prefix and suffix of every temporary file callrec creates.
pub const TEMP_PREFIX: &str = ".callrec-";
pub const TEMP_SUFFIX: &str = ".tmp";

/// A new temporary file in `dir`, to be finished with [`persist`] or [`persist_noclobber`].
/// It is locked (`flock`) for as long as it is open, so [`remove_stale_temps`] can tell a
/// live writer's file from a killed one's.
pub fn temp_in(dir: &Path) -> io::Result<NamedTempFile> {
    let temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)?;
    temp.as_file().lock()?;
    Ok(temp)
}

/// A temporary file untouched for this long, and locked by nobody, was left by a killed
/// process. (The age covers the instant between a writer creating its file and locking it.)
pub const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// Remove the temporary files in `dir` (not below it) that a killed process left: callrec
/// temporary names that no live process holds locked and that were not modified for
/// [`STALE_AFTER`]. Returns the paths removed and the bytes they freed.
pub fn remove_stale_temps(dir: &Path) -> io::Result<(Vec<PathBuf>, u64)> {
    let mut removed = Vec::new();
    let mut freed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.as_encoded_bytes();
        if !(name.starts_with(TEMP_PREFIX.as_bytes()) && name.ends_with(TEMP_SUFFIX.as_bytes())) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
        else {
            continue;
        };
        let meta = file.metadata()?;
        let old = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age >= STALE_AFTER);
        if meta.is_file() && old && file.try_lock().is_ok() {
            fs::remove_file(&path)?;
            freed += meta.len();
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok((removed, freed))
}

/// The directory a path lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Make the entries of a directory (creations, renames, removals) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Fsync a finished temporary file and rename it to `dest`, replacing what is there.
pub fn persist(temp: NamedTempFile, dest: &Path) -> io::Result<()> {
    temp.as_file().sync_all()?;
    temp.persist(dest).map_err(|e| e.error)?;
    sync_dir(parent_dir(dest))
}

/// Fsync a finished temporary file and link it to `dest`, failing with `AlreadyExists`
/// rather than replacing anything.
pub fn persist_noclobber(temp: NamedTempFile, dest: &Path) -> io::Result<()> {
    temp.as_file().sync_all()?;
    temp.persist_noclobber(dest).map_err(|e| e.error)?;
    sync_dir(parent_dir(dest))
}

/// Rename `from` to `to` in one step, failing with `AlreadyExists` rather than replacing a
/// file there (`renameat2` with `RENAME_NOREPLACE`): never two names for one file, never a
/// file replaced.
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: both paths are NUL-terminated C strings that live across the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Write `bytes` to `dest` atomically, replacing it; `secret` makes the file mode 0600.
pub fn write_atomic(dest: &Path, bytes: &[u8], secret: bool) -> io::Result<()> {
    let mut temp = temp_in(parent_dir(dest))?;
    if !secret {
        // NamedTempFile is created 0600; ordinary files get the usual 0644.
        temp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))?;
    }
    temp.write_all(bytes)?;
    persist(temp, dest)
}

/// Create a new file that must not exist yet, mode 0600 from the start (no window in which
/// another user could open it), with its content written and synced.
pub fn create_secret(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Create a new public file that must not exist yet.
pub fn create_public(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(dest)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// An I/O error that remembers which path it was about.
#[derive(Debug, thiserror::Error)]
#[error("{action} {path:?}")]
pub struct PathError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Attach an action and a path to an I/O result.
pub trait PathContext<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T, PathError>;
}

impl<T> PathContext<T> for io::Result<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T, PathError> {
        self.map_err(|source| PathError {
            action,
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Read a whole file through [`open_regular`]: a named pipe or device is refused at once.
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_regular(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}
