//! callrec-push: send sealed records to the archive. See `callrec-push --help`.

use std::fs::OpenOptions;
use std::io::{self, IsTerminal};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context as _};
use clap::Parser;
use rayon::prelude::*;

use callrec::archive::{self, Archive, Target, EXIT_TEMPORARY};
use callrec::args::{PushArgs, VerifyDepth};
use callrec::cli::{self, EXIT_ERROR, EXIT_FAILED, EXIT_OK};
use callrec::wire;

mod common;

use common::Stdout;

const PROG: &str = "callrec-push";

fn main() -> ExitCode {
    let args = PushArgs::parse();
    common::main(PROG, |stdout| run(args, stdout))
}

/// The files to push, each with the spool it came from (if any): below a spool directory the
/// sealed files a walk takes ([`cli::walk_takes`]: no sidecar, media, lock, temporary or
/// staging file), outside its `sent/` and hidden directories; files named directly, as given.
fn collect(inputs: Vec<PathBuf>) -> anyhow::Result<Vec<(PathBuf, Option<PathBuf>)>> {
    let mut files = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            files.push((input, None));
            continue;
        }
        let sent = input.join("sent");
        let entries = walkdir::WalkDir::new(&input)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                e.depth() == 0 || (e.path() != sent && !e.file_name().as_bytes().starts_with(b"."))
            });
        for entry in entries {
            let entry = entry?;
            if entry.file_type().is_file() && cli::walk_takes(cli::Walk::Sealed, entry.path()) {
                files.push((entry.into_path(), Some(input.clone())));
            }
        }
    }
    Ok(files)
}

fn run(args: PushArgs, stdout: &Stdout) -> anyhow::Result<u8> {
    let target: Target = args.to.parse().map_err(anyhow::Error::msg)?;
    let inputs = cli::input_paths(&args.inputs, args.null)?;
    if inputs.is_empty() {
        bail!("no input: name sealed files or a spool directory, or pipe a list of paths on stdin");
    }
    // One push per spool at a time.
    let mut locks = Vec::new();
    for spool in inputs.iter().filter(|p| p.is_dir()) {
        let path = spool.join(".callrec-push.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {path:?}"))?;
        if lock.try_lock().is_err() {
            eprintln!("{PROG}: another callrec-push is working on {spool:?}; try again later");
            return Ok(EXIT_TEMPORARY);
        }
        locks.push(lock);
    }
    let files = collect(inputs)?;
    if files.is_empty() {
        return Ok(EXIT_OK); // nothing sealed to push
    }
    let pubkeys = callrec::places::pubkeys(&args.pubkey);
    let trusted = if pubkeys.is_empty() {
        None
    } else {
        Some(callrec::keys::TrustedKeys::load(&pubkeys)?)
    };
    let retention = (args.retain_days.is_some() || args.retain_until.is_some() || args.legal_hold)
        .then(|| archive::Retention {
            until: args.retain_until.or(args
                .retain_days
                .map(|days| chrono::Utc::now() + chrono::Duration::days(days.into()))),
            mode: args.lock_mode,
            legal_hold: args.legal_hold,
        });
    let archive = Archive::open(&target, args.endpoint.as_deref(), args.jobs, retention)?;
    let journal = archive::Journal::open(
        &args
            .journal
            .clone()
            .unwrap_or_else(callrec::places::journal),
    )?;
    let progress = if io::stderr().is_terminal() && !args.json {
        indicatif::ProgressBar::new(files.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    // A failure that stops the run: the archive unreachable (75) or unusable (2); the rest of
    // the spool is left for the next run.
    let (failed, stop) = (AtomicUsize::new(0), AtomicU8::new(EXIT_OK));
    let (uploaded, already, tried) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let dirs = Mutex::new(std::collections::BTreeSet::new());
    // Twice as many records in hand as uploads at once: while some upload, the others are
    // checked and read back.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2 * args.jobs.max(1))
        .build()?;
    pool.install(|| {
        files.par_iter().for_each(|(file, spool)| {
            if stop.load(Ordering::Relaxed) != EXIT_OK {
                return; // the archive is down or unusable: leave the rest for the next run
            }
            tried.fetch_add(1, Ordering::Relaxed);
            let result = archive
                .push(file, trusted.as_ref(), args.verify == VerifyDepth::Full)
                .and_then(|receipt| match &receipt.retention_problem {
                    Some(reason) if args.require_retention => Err(archive::PushError::RetentionNotKept {
                        key: receipt.key.clone(),
                        reason: reason.clone(),
                    }),
                    _ => Ok(receipt),
                })
                .and_then(|receipt| {
                    journal.append(&receipt)?;
                    let touched = if args.remove_source {
                        std::fs::remove_file(file).map_err(|source| {
                            callrec::fsutil::PathError {
                                action: "cannot remove",
                                path: file.clone(),
                                source,
                            }
                        })?;
                        Some(file.clone())
                    } else if let Some(spool) = spool {
                        Some(archive::move_to_sent(spool, file)?)
                    } else {
                        None
                    };
                    if let Some(path) = touched {
                        let dir = callrec::fsutil::parent_dir(&path).to_path_buf();
                        dirs.lock().expect("dirs").insert(dir);
                    }
                    Ok(receipt)
                });
            progress.inc(1);
            match result {
                Ok(receipt) => {
                    if let Some(reason) = &receipt.retention_problem {
                        progress.suspend(|| {
                            eprintln!(
                                "{PROG}: warning: {} is archived without the Object Lock asked for: {reason}",
                                receipt.key
                            )
                        });
                    }
                    if receipt.status == archive::Archived::Uploaded {
                        uploaded.fetch_add(1, Ordering::Relaxed);
                    } else {
                        already.fetch_add(1, Ordering::Relaxed);
                    }
                    let line = if args.json {
                        wire::json_line(&wire::Push::Archived { receipt: &receipt })
                    } else {
                        if receipt.status != archive::Archived::Uploaded {
                            progress.suspend(|| {
                                eprintln!(
                                    "{PROG}: {file:?} was already archived as {}",
                                    receipt.key
                                )
                            });
                        }
                        format!("{}\n", receipt.key).into_bytes()
                    };
                    stdout.write(&line);
                }
                Err(e) => {
                    match e.exit_code() {
                        EXIT_FAILED => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        // Unusable wins over unreachable: retrying cannot help it.
                        EXIT_TEMPORARY => {
                            let _ = stop.compare_exchange(
                                EXIT_OK,
                                EXIT_TEMPORARY,
                                Ordering::Relaxed,
                                Ordering::Relaxed,
                            );
                        }
                        _ => stop.store(EXIT_ERROR, Ordering::Relaxed),
                    }
                    let message = cli::error_chain(&e);
                    progress.suspend(|| eprintln!("{PROG}: {file:?}: {message}"));
                    if args.json {
                        stdout.write(&wire::json_line(&wire::Push::Error {
                            input: file.as_path().into(),
                            message,
                            temporary: e.is_temporary(),
                        }));
                    }
                }
            }
        })
    });
    progress.finish_and_clear();
    // Moves and removals are made durable once per directory, not once per record.
    for dir in dirs.into_inner().expect("dirs") {
        if let Err(e) = callrec::fsutil::sync_dir(&dir) {
            eprintln!("{PROG}: cannot sync {dir:?}: {e}");
        }
    }
    drop(locks);
    if args.json {
        stdout.write(&wire::json_line(&wire::Push::Summary {
            uploaded: uploaded.into_inner(),
            already_archived: already.into_inner(),
            failed: failed.load(Ordering::Relaxed),
            not_tried: files.len() - tried.into_inner(),
        }));
    }
    match stop.into_inner() {
        EXIT_ERROR => {
            eprintln!("{PROG}: the archive cannot be used (see above); the spool is intact");
            return Ok(EXIT_ERROR);
        }
        EXIT_TEMPORARY => {
            eprintln!("{PROG}: the archive is unreachable; the spool is intact: run again later");
            return Ok(EXIT_TEMPORARY);
        }
        _ => {}
    }
    Ok(if failed.into_inner() > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}
