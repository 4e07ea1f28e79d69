//! A directory archive (a local directory or a mounted share), written by callrec itself: a
//! locked temporary file in the key's directory, fsynced, linked into place only if the key is
//! free, then the file and every directory up to the archive's root fsynced before the record
//! counts as done. What killed pushes left behind is removed by the next push into that
//! directory.

use std::fs::File;
use std::path::Path;

use crate::fsutil::{self, PathContext, PathError};

use super::{Archive, PushError, Target};

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

/// Write a new file `dest` of a directory archive from `src`, returning its SHA-256: through a
/// temporary file in its directory, locked while it is written (so a later push can tell it
/// from one a killed push left), fsynced, then linked to `dest` only if `dest` is free.
pub(super) fn write_new(src: &File, dest: &Path, key: &str) -> Result<String, PushError> {
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
