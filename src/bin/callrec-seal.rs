//! callrec-seal: seal recordings into tamper-evident evidence files. See `callrec-seal --help`.

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context};
use clap::Parser;
use rayon::prelude::*;

use callrec::anchor::tsp::{FetchError, TsaTrust, TsaUrl};
use callrec::anchor::{self, Anchoring, Outcome};
use callrec::archive::EXIT_TEMPORARY;
use callrec::args::{AnchorArgs, CipherArg, SealArgs, SealCommand, TimestampArg};
use callrec::cli::{self, EXIT_FAILED, EXIT_OK};
use callrec::format::Cipher;
use callrec::keys::{self, SealKey};
use callrec::seal::watermark::WatermarkOptions;
use callrec::seal::{self, SealError, SealOptions, SealOutcome};
use callrec::transcode::X264;
use callrec::wire::{self, WirePath};

mod common;

use common::Stdout;

const PROG: &str = "callrec-seal";

fn main() -> ExitCode {
    let args = SealArgs::parse();
    common::main(PROG, |stdout| run(args, stdout))
}

fn run(args: SealArgs, stdout: &Stdout) -> anyhow::Result<u8> {
    match &args.command {
        Some(SealCommand::Keygen(keygen)) => {
            for path in keys::keygen(&keygen.output)? {
                stdout.write(&cli::path_line(&path, false));
            }
            return Ok(EXIT_OK);
        }
        Some(SealCommand::Anchor(a)) => return anchor_now(a, stdout),
        None => {}
    }

    let key_dir = args.key.clone().unwrap_or_else(callrec::places::key_dir);
    let key = SealKey::load(&key_dir).with_context(|| {
        format!("cannot use key directory {key_dir:?} (create one with: {PROG} keygen -o DIR)")
    })?;
    let cipher = match args.cipher {
        CipherArg::Age => Cipher::Age,
        CipherArg::Table => Cipher::Table,
    };
    let watermark = (!args.no_watermark).then(|| WatermarkOptions {
        x264: X264 {
            preset: args.preset.clone(),
            crf: args.crf,
            tune: None,
        },
        font: args.watermark_font.clone(),
    });
    let options = SealOptions::new(
        &key_dir,
        cipher,
        &args.recipient,
        args.output_dir.clone(),
        args.remove_source,
        watermark,
    )?;
    let given = cli::input_paths(&args.inputs, args.null)?;
    if given.is_empty() {
        bail!("no input: name media files or directories, or pipe a list of paths on stdin");
    }
    let start = seal::start_run(&given, &key, &options)?;
    for media in &start.finished_removals {
        eprintln!("{PROG}: {media:?}: finished removing a sealed source");
    }
    for recovered in &start.recovered {
        match recovered {
            Ok(c) => eprintln!("{PROG}: {:?}: completed an interrupted recording", c.media),
            Err(e) => eprintln!("{PROG}: warning: {}", cli::error_chain(e)),
        }
    }
    if !start.removed.is_empty() {
        eprintln!(
            "{PROG}: removed {} temporary file(s) ({} bytes) left by killed runs",
            start.removed.len(),
            start.freed
        );
    }
    let inputs = start.inputs;

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
    let (sealed, already, failed, anchored) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    // Time stamps: every TSA at once, over the head. A TSA that does not answer leaves the head
    // for the next run (or `callrec-seal anchor`) to anchor; sealing never waits for long.
    let tsas = tsa_urls(&args.tsa)?;
    let trust = TsaTrust::load(&callrec::places::tsa_ca(&args.tsa_ca))?;
    // A TSA that could not be reached once is not asked again in this run, so a dead one costs
    // one timeout, not one per record.
    let unreachable: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let last_dir: Mutex<Option<PathBuf>> = Mutex::new(None);
    let anchor_head = |dir: &Path| {
        let live: Vec<TsaUrl> = {
            let dead = unreachable.lock().unwrap_or_else(|e| e.into_inner());
            tsas.iter()
                .filter(|t| !dead.contains(&t.shown().to_string()))
                .cloned()
                .collect()
        };
        if live.is_empty() {
            return;
        }
        match anchor::anchor_head(&key_dir, &live, &trust, dir, false) {
            Ok(anchoring) => {
                for outcome in &anchoring.outcomes {
                    if let Outcome::Failed {
                        tsa,
                        error: FetchError::Unreachable(_),
                    } = outcome
                    {
                        unreachable
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(tsa.clone());
                    }
                }
                let n =
                    progress.suspend(|| report_anchoring(stdout, &anchoring, args.json, args.null));
                anchored.fetch_add(n, Ordering::Relaxed);
            }
            Err(anchor::AnchorError::NoHead) => {}
            Err(e) => eprintln!(
                "{PROG}: warning: the chain head is not anchored: {}",
                cli::error_chain(&e)
            ),
        }
    };
    let each = args.timestamp == TimestampArg::Each;
    pool.install(|| {
        inputs.par_iter().for_each(|input| {
            let result = seal::seal(input, &key, &options);
            match &result {
                Ok(SealOutcome::Sealed { .. }) => sealed.fetch_add(1, Ordering::Relaxed),
                Ok(_) => already.fetch_add(1, Ordering::Relaxed),
                Err(_) => failed.fetch_add(1, Ordering::Relaxed),
            };
            progress.suspend(|| report(stdout, input, &result, &args));
            if let Ok(outcome @ SealOutcome::Sealed { .. }) = &result {
                let dir = callrec::fsutil::parent_dir(outcome.sealed_path());
                *last_dir.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir.to_path_buf());
                if each {
                    anchor_head(dir);
                }
            }
            progress.inc(1);
        })
    });
    progress.finish_and_clear();
    // Once per run (with `--timestamp each`, only if the run's last anchor did not cover the
    // head, say when a TSA was down), into the output directory, else beside the last record
    // sealed, else here.
    let dir = options
        .out_dir
        .clone()
        .or_else(|| last_dir.into_inner().unwrap_or_else(|e| e.into_inner()))
        .unwrap_or_else(|| PathBuf::from("."));
    anchor_head(&dir);
    let (sealed, already, failed, anchored) = (
        sealed.into_inner(),
        already.into_inner(),
        failed.into_inner(),
        anchored.into_inner(),
    );
    if args.json {
        stdout.write(&wire::json_line(&wire::Seal::Summary {
            sealed,
            already_sealed: already,
            failed,
            anchored,
        }));
    } else if failed > 0 {
        eprintln!("{PROG}: {sealed} sealed, {already} already sealed, {failed} failed");
    }
    Ok(if failed > 0 { EXIT_FAILED } else { EXIT_OK })
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

/// `callrec-seal anchor`: anchor the head now. Exit 0 when anchored (now or before), 75 when
/// no TSA could be reached, 1 when none gave a good token.
fn anchor_now(args: &AnchorArgs, stdout: &Stdout) -> anyhow::Result<u8> {
    let key_dir = args.key.clone().unwrap_or_else(callrec::places::key_dir);
    let tsas = tsa_urls(&args.tsa)?;
    if tsas.is_empty() {
        bail!("no TSA: give --tsa URL or set CALLREC_TSA");
    }
    let trust = TsaTrust::load(&callrec::places::tsa_ca(&args.tsa_ca))?;
    let anchoring = anchor::anchor_head(&key_dir, &tsas, &trust, &args.output_dir, args.again)
        .with_context(|| format!("cannot anchor the chain of key directory {key_dir:?}"))?;
    if anchoring.outcomes.is_empty() {
        eprintln!(
            "{PROG}: key {} is anchored already up to its head, sequence {} (--again to add a witness)",
            anchoring.key_id, anchoring.sequence
        );
    }
    let anchored = report_anchoring(stdout, &anchoring, args.json, false);
    let failed = anchoring.outcomes.len() - anchored;
    if args.json {
        stdout.write(&wire::json_line(&wire::Seal::Summary {
            sealed: 0,
            already_sealed: 0,
            failed,
            anchored,
        }));
    }
    let unreachable = anchoring.outcomes.iter().all(|o| {
        matches!(
            o,
            Outcome::Failed {
                error: callrec::anchor::tsp::FetchError::Unreachable(_),
                ..
            }
        )
    });
    Ok(if anchoring.outcomes.is_empty() || anchored > 0 {
        EXIT_OK
    } else if unreachable {
        EXIT_TEMPORARY
    } else {
        EXIT_FAILED
    })
}

/// Report each TSA's outcome; the number of anchor files written.
fn report_anchoring(stdout: &Stdout, anchoring: &Anchoring, json: bool, null: bool) -> usize {
    let (key_id, sequence) = (anchoring.key_id.as_str(), anchoring.sequence);
    let mut anchored = 0;
    for outcome in &anchoring.outcomes {
        match outcome {
            Outcome::Anchored { path, tsa, stamp } => {
                anchored += 1;
                if json {
                    stdout.write(&wire::json_line(&wire::Seal::Anchored {
                        path: path.as_path().into(),
                        key_id,
                        sequence,
                        tsa,
                        time: stamp.time.to_rfc3339(),
                        tsa_name: &stamp.tsa,
                    }));
                } else {
                    stdout.write(&cli::path_line(path, null));
                }
            }
            Outcome::Failed { tsa, error } => {
                eprintln!(
                    "{PROG}: warning: key {key_id}: head sequence {sequence} not anchored by {tsa}: {error}"
                );
                if json {
                    stdout.write(&wire::json_line(&wire::Seal::NotAnchored {
                        key_id,
                        sequence,
                        tsa,
                        message: error.to_string(),
                    }));
                }
            }
        }
    }
    if anchored == 0 && !anchoring.outcomes.is_empty() {
        eprintln!("{PROG}: key {key_id}: the chain head is not anchored; `{PROG} anchor` anchors it later");
    }
    anchored
}

/// The TSAs: `--tsa`, else `$CALLREC_TSA`. The error does not repeat a URL (it may hold a
/// password).
fn tsa_urls(given: &[String]) -> anyhow::Result<Vec<TsaUrl>> {
    callrec::places::tsa_urls(given)
        .iter()
        .enumerate()
        .map(|(i, text)| {
            TsaUrl::parse(text).map_err(|e| {
                anyhow::anyhow!(
                    "TSA {} of --tsa (or $CALLREC_TSA) cannot be used: {e}",
                    i + 1
                )
            })
        })
        .collect()
}
