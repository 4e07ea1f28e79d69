//! Pushing spools to the archive: the protocol between `callrec-push` and the directories it
//! empties. One push per spool at a time (`.callrec-push.lock`); a spool gives up its sealed
//! files and anchor files only ([`cli::Walk::Evidence`], never `sent/`); each is archived and
//! read back ([`Archive::push`]), its receipt journaled, and only then moved to `SPOOL/sent/`
//! ([`move_to_sent`]) or removed, the moves made durable once per directory. The records go
//! first, then the anchors, so an anchor reaches the archive after the records of its spool
//! that it covers. A failure the archive will not get over by itself (unreachable: 75;
//! unusable: 2) stops the run and leaves the rest in place.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::anchor;
use crate::archive::{self, Archive, Archived, Journal, PushError, Receipt, Retention, Target};
use crate::cli::{self, EXIT_ERROR, EXIT_FAILED, EXIT_OK};
use crate::fsutil::{self, PathContext, PathError};
use crate::keys::TrustedKeys;

/// The lock a push holds in each spool it works on.
pub const LOCK: &str = ".callrec-push.lock";

/// How to push.
pub struct PushOptions {
    pub target: Target,
    pub endpoint: Option<String>,
    /// Uploads at once.
    pub jobs: usize,
    pub retention: Option<Retention>,
    /// A record whose Object Lock the archive did not keep fails.
    pub require_retention: bool,
    /// Verify each record fully with these keys before it leaves.
    pub trusted: Option<TrustedKeys>,
    /// Read every archived byte back, not only the seal.
    pub verify_full: bool,
    /// Remove a done record instead of moving it to `SPOOL/sent/`.
    pub remove_source: bool,
    pub journal: PathBuf,
}

/// What a push run did, counting sealed files and anchor files alike.
#[derive(Debug, Default)]
pub struct PushSummary {
    pub uploaded: usize,
    pub already_archived: usize,
    pub failed: usize,
    /// Files left in place because the run stopped.
    pub not_tried: usize,
    /// Why the run stopped: [`archive::EXIT_TEMPORARY`] (unreachable) or [`EXIT_ERROR`]
    /// (the archive cannot be used); [`EXIT_OK`] if it did not.
    pub stopped: u8,
    /// Directories whose moves could not be made durable.
    pub unsynced: Vec<(PathBuf, std::io::Error)>,
}

impl PushSummary {
    /// The run's exit status.
    pub fn exit_code(&self) -> u8 {
        match self.stopped {
            EXIT_OK if self.failed > 0 => EXIT_FAILED,
            code => code,
        }
    }
}

/// The end of a push run.
#[derive(Debug)]
pub enum PushRun {
    /// Another push holds this spool: nothing was done (try again later).
    Busy(PathBuf),
    Done(PushSummary),
}

/// Push every sealed file and anchor file in `inputs` (files, or spool directories): the
/// records first, then the anchors. `each` hears of every file as it is done or fails, from
/// the worker threads.
pub fn push(
    inputs: &[PathBuf],
    opts: &PushOptions,
    each: &(dyn Fn(&Path, &Result<Receipt, PushError>) + Sync),
) -> Result<PushRun, PushError> {
    let mut locks = Vec::new();
    for spool in inputs.iter().filter(|p| p.is_dir()) {
        match lock(spool)? {
            Some(lock) => locks.push(lock),
            None => return Ok(PushRun::Busy(spool.clone())),
        }
    }
    let files = collect(inputs)?;
    if files.is_empty() {
        return Ok(PushRun::Done(PushSummary::default()));
    }
    let archive = Archive::open(
        &opts.target,
        opts.endpoint.as_deref(),
        opts.jobs,
        opts.retention.clone(),
    )?;
    let journal = Journal::open(&opts.journal)?;
    let (uploaded, already, failed, tried) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let stop = AtomicU8::new(EXIT_OK);
    let dirs = Mutex::new(BTreeSet::new());
    // Twice as many records in hand as uploads at once: while some upload, the others are
    // checked and read back.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2 * opts.jobs.max(1))
        .build()
        .map_err(|e| PushError::Setup(e.to_string()))?;
    // Records first, then anchors: an anchor archived before a record it covers would let the
    // archive claim a chain it does not hold yet, were the run to stop in between.
    let (anchors, records): (Vec<_>, Vec<_>) = files
        .iter()
        .partition(|(file, _)| anchor::is_anchor_name(file));
    pool.install(|| {
        for phase in [records, anchors] {
            phase.par_iter().for_each(|(file, spool)| {
                if stop.load(Ordering::Relaxed) != EXIT_OK {
                    return; // the archive is down or unusable: leave the rest for the next run
                }
                tried.fetch_add(1, Ordering::Relaxed);
                let result = push_one(&archive, &journal, file, spool.as_deref(), opts, &dirs);
                match &result {
                    Ok(receipt) if receipt.status == Archived::Uploaded => {
                        uploaded.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        already.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => match e.exit_code() {
                        EXIT_FAILED => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        // Unusable wins over unreachable: retrying cannot help it.
                        archive::EXIT_TEMPORARY => {
                            let _ = stop.compare_exchange(
                                EXIT_OK,
                                archive::EXIT_TEMPORARY,
                                Ordering::Relaxed,
                                Ordering::Relaxed,
                            );
                        }
                        _ => stop.store(EXIT_ERROR, Ordering::Relaxed),
                    },
                }
                each(file, &result);
            })
        }
    });
    // Moves and removals are made durable once per directory, not once per record.
    let unsynced = dirs
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .filter_map(|dir| fsutil::sync_dir(&dir).err().map(|e| (dir, e)))
        .collect();
    drop(locks);
    Ok(PushRun::Done(PushSummary {
        uploaded: uploaded.into_inner(),
        already_archived: already.into_inner(),
        failed: failed.into_inner(),
        not_tried: files.len() - tried.into_inner(),
        stopped: stop.into_inner(),
        unsynced,
    }))
}

/// Archive one record, journal its receipt, then move it to `SPOOL/sent/` (or remove it).
fn push_one(
    archive: &Archive,
    journal: &Journal,
    file: &Path,
    spool: Option<&Path>,
    opts: &PushOptions,
    dirs: &Mutex<BTreeSet<PathBuf>>,
) -> Result<Receipt, PushError> {
    let receipt = archive.push(file, opts.trusted.as_ref(), opts.verify_full)?;
    if let (Some(reason), true) = (&receipt.retention_problem, opts.require_retention) {
        return Err(PushError::RetentionNotKept {
            key: receipt.key.clone(),
            reason: reason.clone(),
        });
    }
    journal.append(&receipt)?;
    let touched = if opts.remove_source {
        std::fs::remove_file(file).at("cannot remove", file)?;
        Some(file.to_path_buf())
    } else if let Some(spool) = spool {
        Some(move_to_sent(spool, file)?)
    } else {
        None
    };
    if let Some(path) = touched {
        let dir = fsutil::parent_dir(&path).to_path_buf();
        dirs.lock().unwrap_or_else(|e| e.into_inner()).insert(dir);
    }
    Ok(receipt)
}

/// Take a spool's push lock; `None` if another push holds it.
fn lock(spool: &Path) -> Result<Option<File>, PathError> {
    let path = spool.join(LOCK);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .at("cannot open", &path)?;
    Ok(lock.try_lock().is_ok().then_some(lock))
}

/// Move a pushed file from its spool into the spool's `sent/` directory (same relative path).
///
/// The move is not synced: a move lost in a crash leaves the file in the spool, and the next
/// push finds it already archived and moves it again. Sync the directories once at the end
/// ([`fsutil::sync_dir`]) to make the moves of a run durable.
pub fn move_to_sent(spool: &Path, file: &Path) -> Result<PathBuf, PathError> {
    let relative = file
        .strip_prefix(spool)
        .unwrap_or(file.file_name().map(Path::new).unwrap_or(file));
    let dest = spool.join("sent").join(relative);
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).at("cannot create", dir)?;
    }
    std::fs::rename(file, &dest).at("cannot move", file)?;
    Ok(dest)
}

/// The files to push, each with the spool it came from (if any): below a spool directory the
/// sealed files and anchor files a walk takes ([`cli::walk_takes`] with [`cli::Walk::Evidence`]:
/// no sidecar, media, lock, temporary or staging file), outside its `sent/` and hidden
/// directories; files named directly, as given.
fn collect(inputs: &[PathBuf]) -> Result<Vec<(PathBuf, Option<PathBuf>)>, PathError> {
    let mut files = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            files.push((input.clone(), None));
            continue;
        }
        let sent = input.join("sent");
        let entries = walkdir::WalkDir::new(input)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                e.depth() == 0 || (e.path() != sent && !e.file_name().as_bytes().starts_with(b"."))
            });
        for entry in entries {
            let entry = entry.map_err(|e| PathError {
                action: "cannot walk",
                path: input.clone(),
                source: e.into(),
            })?;
            if entry.file_type().is_file() && cli::walk_takes(cli::Walk::Evidence, entry.path()) {
                files.push((entry.into_path(), Some(input.clone())));
            }
        }
    }
    Ok(files)
}
