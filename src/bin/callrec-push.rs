//! callrec-push: send sealed records and their anchors to the archive. See `callrec-push --help`.

use std::io::{self, IsTerminal};
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use clap::Parser;

use callrec::archive::spool::{self, PushOptions, PushRun};
use callrec::archive::{self, Archived, PushError, Receipt, Target, EXIT_TEMPORARY};
use callrec::args::{PushArgs, VerifyDepth};
use callrec::cli::{self, EXIT_ERROR};
use callrec::wire;

mod common;

use common::Stdout;

const PROG: &str = "callrec-push";

fn main() -> ExitCode {
    let args = PushArgs::parse();
    common::main(PROG, |stdout| run(args, stdout))
}

fn run(args: PushArgs, stdout: &Stdout) -> anyhow::Result<u8> {
    let target: Target = args.to.parse().map_err(anyhow::Error::msg)?;
    let inputs = cli::input_paths(&args.inputs, args.null)?;
    if inputs.is_empty() {
        bail!("no input: name sealed files, anchor files or a spool directory, or pipe a list of paths on stdin");
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
    let options = PushOptions {
        target,
        endpoint: args.endpoint.clone(),
        jobs: args.jobs,
        retention,
        require_retention: args.require_retention,
        trusted,
        verify_full: args.verify == VerifyDepth::Full,
        remove_source: args.remove_source,
        journal: args
            .journal
            .clone()
            .unwrap_or_else(callrec::places::journal),
    };
    let progress = if io::stderr().is_terminal() && !args.json {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let report = |file: &Path, result: &Result<Receipt, PushError>| {
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
                if args.json {
                    stdout.write(&wire::json_line(&wire::Push::Archived { receipt }));
                    return;
                }
                if receipt.status != Archived::Uploaded {
                    progress.suspend(|| {
                        eprintln!("{PROG}: {file:?} was already archived as {}", receipt.key)
                    });
                }
                stdout.write(format!("{}\n", receipt.key).as_bytes());
            }
            Err(e) => {
                let message = cli::error_chain(e);
                progress.suspend(|| eprintln!("{PROG}: {file:?}: {message}"));
                if args.json {
                    stdout.write(&wire::json_line(&wire::Push::Error {
                        input: file.into(),
                        message,
                        temporary: e.is_temporary(),
                    }));
                }
            }
        }
    };
    let summary = match spool::push(&inputs, &options, &report)? {
        PushRun::Busy(spool) => {
            eprintln!("{PROG}: another callrec-push is working on {spool:?}; try again later");
            return Ok(EXIT_TEMPORARY);
        }
        PushRun::Done(summary) => summary,
    };
    progress.finish_and_clear();
    for (dir, e) in &summary.unsynced {
        eprintln!("{PROG}: cannot sync {dir:?}: {e}");
    }
    if args.json {
        stdout.write(&wire::json_line(&wire::Push::Summary {
            uploaded: summary.uploaded,
            already_archived: summary.already_archived,
            failed: summary.failed,
            not_tried: summary.not_tried,
        }));
    }
    match summary.stopped {
        EXIT_ERROR => {
            eprintln!("{PROG}: the archive cannot be used (see above); the spool is intact")
        }
        EXIT_TEMPORARY => {
            eprintln!("{PROG}: the archive is unreachable; the spool is intact: run again later")
        }
        _ => {}
    }
    Ok(summary.exit_code())
}
