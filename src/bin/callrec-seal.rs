//! callrec-seal: seal recordings into tamper-evident evidence files. See `callrec-seal --help`.

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context};
use clap::Parser;
use rayon::prelude::*;

use callrec::args::{CipherArg, SealArgs, SealCommand};
use callrec::capture;
use callrec::cli::{self, EXIT_FAILED, EXIT_OK};
use callrec::format::Cipher;
use callrec::keys::{self, SealKey, TextKey};
use callrec::seal::{self, SealError, SealOptions, SealOutcome};
use callrec::transcode::X264;
use callrec::watermark::WatermarkOptions;
use callrec::wire::{self, WirePath};

mod common;

use common::Stdout;

const PROG: &str = "callrec-seal";

fn main() -> ExitCode {
    let args = SealArgs::parse();
    common::main(PROG, |stdout| run(args, stdout))
}

fn run(args: SealArgs, stdout: &Stdout) -> anyhow::Result<u8> {
    if let Some(SealCommand::Keygen(keygen)) = args.command {
        for path in keys::keygen(&keygen.output)? {
            stdout.write(&cli::path_line(&path, false));
        }
        return Ok(EXIT_OK);
    }

    let key_dir = args.key.clone().unwrap_or_else(callrec::places::key_dir);
    let key = SealKey::load(&key_dir).with_context(|| {
        format!("cannot use key directory {key_dir:?} (create one with: {PROG} keygen -o DIR)")
    })?;
    let options = seal_options(&args, &key_dir)?;
    let given = cli::input_paths(&args.inputs, args.null)?;
    if given.is_empty() {
        bail!("no input: name media files or directories, or pipe a list of paths on stdin");
    }
    // What killed runs left in the directories given is finished first: removals of sealed
    // sources, and recordings a killed capture left.
    for dir in given.iter().filter(|p| p.is_dir()) {
        for media in seal::finish_removals(dir)? {
            eprintln!("{PROG}: {media:?}: finished removing a sealed source");
        }
        for recovered in capture::recover_all(dir) {
            match recovered {
                Ok(c) => eprintln!("{PROG}: {:?}: completed an interrupted recording", c.media),
                Err(e) => eprintln!("{PROG}: warning: {}", cli::error_chain(&e)),
            }
        }
    }
    let inputs = cli::expand_dirs(given.clone(), cli::Walk::Recordings)?;
    // Settle the chain (a seal a crash left pending) and clear what killed runs left behind.
    let mut dirs: std::collections::BTreeSet<PathBuf> = match &options.out_dir {
        Some(dir) => [dir.clone()].into(),
        None => inputs
            .iter()
            .map(|p| callrec::fsutil::parent_dir(p).to_path_buf())
            .collect(),
    };
    dirs.extend(given.iter().filter(|p| p.is_dir()).cloned());
    let (removed, freed) = seal::prepare(&key, dirs.iter())?;
    if !removed.is_empty() {
        eprintln!(
            "{PROG}: removed {} temporary file(s) ({freed} bytes) left by killed runs",
            removed.len()
        );
    }

    let jobs = args.jobs.unwrap_or(0);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let progress = if io::stderr().is_terminal() && !args.json {
        indicatif::ProgressBar::new(inputs.len() as u64).with_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} sealed, {eta} left")
                .expect("valid template"),
        )
    } else {
        indicatif::ProgressBar::hidden()
    };
    let (sealed, already, failed) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    pool.install(|| {
        inputs.par_iter().for_each(|input| {
            let result = seal::seal(input, &key, &options);
            match &result {
                Ok(SealOutcome::Sealed { .. }) => sealed.fetch_add(1, Ordering::Relaxed),
                Ok(_) => already.fetch_add(1, Ordering::Relaxed),
                Err(_) => failed.fetch_add(1, Ordering::Relaxed),
            };
            progress.suspend(|| report(stdout, input, &result, &args));
            progress.inc(1);
        })
    });
    progress.finish_and_clear();
    let (sealed, already, failed) = (
        sealed.into_inner(),
        already.into_inner(),
        failed.into_inner(),
    );
    if args.json {
        stdout.write(&wire::json_line(&wire::Seal::Summary {
            sealed,
            already_sealed: already,
            failed,
        }));
    } else if failed > 0 {
        eprintln!("{PROG}: {sealed} sealed, {already} already sealed, {failed} failed");
    }
    Ok(if failed > 0 { EXIT_FAILED } else { EXIT_OK })
}

fn seal_options(args: &SealArgs, key_dir: &Path) -> anyhow::Result<SealOptions> {
    let mut options = SealOptions {
        out_dir: args.output_dir.clone(),
        cipher: Cipher::Age,
        recipients: Vec::new(),
        table: None,
        remove_source: args.remove_source,
        watermark: (!args.no_watermark).then(|| WatermarkOptions {
            x264: X264 {
                preset: args.preset.clone(),
                crf: args.crf,
                tune: None,
            },
            font: args.watermark_font.clone(),
        }),
    };
    if let Some(wm) = &options.watermark {
        if !wm.font.is_file() {
            bail!(
                "watermark font {:?} not found: install fonts-dejavu-core, or give --watermark-font",
                wm.font
            );
        }
    }
    if let Some(dir) = &options.out_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create output directory {dir:?}"))?;
    }
    match args.cipher {
        CipherArg::Table => {
            options.cipher = Cipher::Table;
            match keys::load_text_key(key_dir, Cipher::Table)? {
                TextKey::Table(table) => options.table = Some(*table),
                TextKey::Age(_) => unreachable!("asked for a table"),
            }
        }
        CipherArg::Age => {
            let file = key_dir.join(keys::AGE_RECIPIENTS);
            if file.exists() {
                options.recipients = keys::read_recipients(&file)?;
            }
            for r in &args.recipient {
                options
                    .recipients
                    .push(keys::parse_recipient(r).map_err(anyhow::Error::msg)?);
            }
            if options.recipients.is_empty() {
                bail!("no age recipient: give --recipient or list recipients in {file:?}");
            }
        }
    }
    Ok(options)
}

fn report(
    stdout: &Stdout,
    input: &PathBuf,
    result: &Result<SealOutcome, SealError>,
    args: &SealArgs,
) {
    let wire_input = WirePath::from(input.as_path());
    match result {
        Ok(outcome) => {
            let output = outcome.sealed_path();
            match outcome {
                SealOutcome::Sealed { .. } => {}
                SealOutcome::InputSealed { .. } => {
                    eprintln!("{PROG}: {input:?} is already a sealed file; not sealed again")
                }
                SealOutcome::OutputExists { .. } => {
                    eprintln!("{PROG}: {input:?} is already sealed as {output:?}")
                }
            }
            if let (SealOutcome::Sealed { .. }, Some(earlier)) = (outcome, outcome.corrects()) {
                eprintln!(
                    "{PROG}: {input:?}: the sidecar changed after {earlier:?} was sealed; sealed the new text as a correction of it"
                );
            }
            if !args.json {
                stdout.write(&cli::path_line(output, args.null));
                return;
            }
            let wire = match outcome {
                SealOutcome::Sealed {
                    record_id,
                    sequence,
                    ..
                } => wire::Seal::Sealed {
                    input: wire_input,
                    output: output.into(),
                    record_id: record_id.as_str(),
                    sequence: *sequence,
                    corrects: outcome.corrects().map(WirePath::from),
                },
                _ => wire::Seal::AlreadySealed {
                    input: wire_input,
                    output: output.into(),
                },
            };
            stdout.write(&wire::json_line(&wire));
        }
        Err(err) => {
            let message = cli::error_chain(err);
            eprintln!("{PROG}: {input:?}: {message}");
            if args.json {
                stdout.write(&wire::json_line(&wire::Seal::Error {
                    input: wire_input,
                    message,
                }));
            }
        }
    }
}
