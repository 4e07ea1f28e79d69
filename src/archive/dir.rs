//! A directory archive (a local directory or a mounted share), written by callrec itself: a
//! locked temporary file in the key's directory, fsynced, linked into place only if the key is
//! free, then the file and every directory up to the archive's root fsynced before the record
//! counts as done. What killed pushes left behind is removed by the next push into that
//! directory.
//!
//! A directory archive is read without following symbolic links: listed ([`list_dir`]) and
//! opened ([`open_archived`]) so that no link, in the archive or on the way to it, can make
//! it serve a file from elsewhere.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::cli::Walk;
use crate::fsutil::{self, PathContext, PathError};

use super::{is_safe_key, Archive, Object, PushError, Skipped, Target};

impl Archive {
    /// Make an archived file of a directory archive durable, whichever process wrote it: the
    /// file, its directory, and (once a run) each directory's entry up to the archive's root.
    pub(super) fn make_durable(&self, path: &Path) -> Result<(), PathError> {
        File::open(path)
            .and_then(|f| f.sync_all())
            .at("cannot sync", path)?;
        let mut dir = fsutil::parent_dir(path);
        fsutil::sync_dir(dir).at("cannot sync", dir)?;
        let Target::Dir(root) = &self.target else {
            return Ok(());
        };
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        while dir.starts_with(root) && dir != root && !synced.contains(dir) {
            let parent = fsutil::parent_dir(dir);
            fsutil::sync_dir(parent).at("cannot sync", parent)?;
            synced.insert(dir.to_path_buf());
            dir = parent;
        }
        Ok(())
    }
}

/// Write a new file `dest` of a directory archive from `src` (a file, or bytes in memory),
/// returning its SHA-256: through a temporary file in its directory, locked while it is written
/// (so a later push can tell it from one a killed push left), fsynced, then linked to `dest`
/// only if `dest` is free.
pub(super) fn write_new(src: impl Read, dest: &Path, key: &str) -> Result<String, PushError> {
    let dir = fsutil::parent_dir(dest);
    std::fs::create_dir_all(dir).at("cannot create", dir)?;
    let mut temp = fsutil::temp_in(dir).at("cannot create a file in", dir)?;
    let (sha256, _) = fsutil::copy_hashing(src, &mut temp).at("cannot write", dest)?;
    match fsutil::persist_noclobber(temp, dest) {
        Ok(()) => Ok(hex::encode(sha256)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(PushError::Conflict {
            key: key.to_string(),
        }),
        Err(e) => Err(PushError::Io(PathError {
            action: "cannot write",
            path: dest.to_path_buf(),
            source: e,
        })),
    }
}

/// Remove what killed pushes left in `dir`, a directory of a directory archive: callrec
/// temporary files that no live process holds ([`fsutil::remove_stale_temps`]: unlocked and
/// untouched for [`fsutil::STALE_AFTER`]), and the staging files `KEY#N` that earlier versions
/// wrote through `object_store`, untouched as long. Best effort: a leftover that cannot be
/// removed is left for the next run.
pub(super) fn remove_leftovers(dir: &Path) {
    let _ = fsutil::remove_stale_temps(dir);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let staging = name
            .to_str()
            .and_then(|n| n.rsplit_once('#'))
            .is_some_and(|(key, n)| {
                key.contains(".sealed") && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
            });
        let stale = entry
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= fsutil::STALE_AFTER);
        if staging && stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Open the file of `key` in the directory archive `root` for reading without following a
/// symbolic link: the file itself is opened with `O_NOFOLLOW` (and `O_NONBLOCK`, so a named
/// pipe cannot hang the reader), must be a regular file, and the path the open handle really
/// has must be the archive's real path joined with `key`, so no directory on the way is a link
/// either.
pub fn open_archived(root: &Path, key: &str) -> Result<File, PushError> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let path = Target::Dir(root.to_path_buf())
        .local_path(key)?
        .expect("a directory archive has local paths");
    let refused = |reason: &str| {
        PushError::Io(PathError {
            action: "refused",
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, reason.to_string()),
        })
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => {
                refused("a symbolic link; archives are read without following links")
            }
            _ => PushError::Io(PathError {
                action: "cannot open",
                path: path.clone(),
                source: e,
            }),
        })?;
    if !file.metadata().at("cannot read", &path)?.is_file() {
        return Err(refused("not a regular file"));
    }
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .at("cannot resolve", &path)?;
    let expected = std::fs::canonicalize(root)
        .at("cannot resolve", root)?
        .join(key);
    if real != expected {
        return Err(refused(
            "reached through a symbolic link; archives are read without following links",
        ));
    }
    Ok(file)
}

/// The sealed records and anchors of a directory archive (names as a [`Walk::Evidence`] takes
/// them: [`crate::cli::is_sealed_name`], [`crate::anchor::is_anchor_name`]), listed
/// without following symbolic links and sorted by key. Working files (hidden names, `*.part`,
/// `KEY#N` staging files) and hidden directories are passed over; an entry that cannot be a
/// record (a link, a name that is not a safe key, not a regular file, unreadable) is skipped
/// and returned as such.
pub(super) fn list_dir(root: &Path) -> (Vec<Object>, Vec<Skipped>) {
    use std::os::unix::fs::MetadataExt;
    let mut objects = Vec::new();
    let mut skipped = Vec::new();
    let relative = |path: &Path| path.strip_prefix(root).unwrap_or(path).to_path_buf();
    let walk = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().as_encoded_bytes().starts_with(b"."));
    for entry in walk {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                skipped.push(Skipped {
                    path: relative(e.path().unwrap_or(root)),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let path = entry.path();
        if entry.file_type().is_dir() || !crate::cli::walk_takes(Walk::Evidence, path) {
            continue;
        }
        let skip = |reason: &str| Skipped {
            path: relative(path),
            reason: reason.to_string(),
        };
        if entry.file_type().is_symlink() {
            skipped.push(skip(
                "a symbolic link; archives are read without following links",
            ));
            continue;
        }
        if !entry.file_type().is_file() {
            skipped.push(skip("not a regular file"));
            continue;
        }
        let key = match relative(path).to_str() {
            Some(key) if is_safe_key(key) => key.to_string(),
            _ => {
                skipped.push(skip("the name is not a safe archive key (not UTF-8, a control character or a backslash)"));
                continue;
            }
        };
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) => {
                skipped.push(skip(&e.to_string()));
                continue;
            }
        };
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .unwrap_or_default()
            .as_micros();
        // The ETag object_store gives a local file, so indexes made before stay valid.
        objects.push(Object {
            key,
            size: meta.len(),
            etag: format!("{:x}-{mtime:x}-{:x}", meta.ino(), meta.len()),
        });
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    (objects, skipped)
}
