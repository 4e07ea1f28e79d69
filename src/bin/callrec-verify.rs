//! callrec-verify: check sealed call records. See `callrec-verify --help`.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use clap::Parser;
use rayon::prelude::*;

use callrec::args::VerifyArgs;
use callrec::cli::{self, EXIT_ERROR, EXIT_FAILED, EXIT_OK};
use callrec::keys::TrustedKeys;
use callrec::media::StreamKind;
use callrec::verify::{self, ChainIssue, SealedFile, Verified, VerifyError};
use callrec::wire::{self, ChainStatus, VerdictStatus, WirePath};

mod common;

use common::Stdout;

const PROG: &str = "callrec-verify";

fn main() -> ExitCode {
    let args = VerifyArgs::parse();
    common::main(PROG, |stdout| run(args, stdout))
}

fn trusted_keys(args: &VerifyArgs) -> anyhow::Result<TrustedKeys> {
    Ok(TrustedKeys::load(&callrec::places::pubkeys(&args.pubkey))?)
}

fn single_file(args: &VerifyArgs) -> anyhow::Result<&Path> {
    match args.files.as_slice() {
        [file] => Ok(file),
        _ => bail!("--explain, --extract-media and --show take exactly one FILE"),
    }
}

fn run(args: VerifyArgs, stdout: &Stdout) -> anyhow::Result<u8> {
    let trusted = trusted_keys(&args)?;
    let need_key = |what: &str| -> anyhow::Result<()> {
        if trusted.is_empty() && !args.quick {
            bail!("{what} needs a trusted public key: give --pubkey seal.pub (or --quick for the document's checks only)");
        }
        Ok(())
    };
    if args.explain {
        let sealed = SealedFile::open(single_file(&args)?)?;
        stdout.write(verify::explain(&sealed).as_bytes());
        return Ok(EXIT_OK);
    }
    if args.extract_media {
        need_key("--extract-media")?;
        return extract_media(&args, &trusted, stdout);
    }
    if args.extract_audio || args.extract_video {
        need_key("--extract-audio and --extract-video")?;
        let kind = if args.extract_audio {
            StreamKind::Audio
        } else {
            StreamKind::Video
        };
        return extract_streams(&args, &trusted, kind, stdout);
    }
    if args.show {
        need_key("--show")?;
        return show(&args, &trusted, stdout);
    }
    need_key("verification")?;
    verify_all(&args, &trusted, stdout)
}

/// Full verification, or the quick checks alone with `--quick`.
fn check(
    path: &Path,
    args: &VerifyArgs,
    trusted: &TrustedKeys,
    sink: Option<&mut dyn Write>,
) -> Result<Option<Verified>, VerifyError> {
    let sealed = SealedFile::open(path)?;
    if args.quick {
        verify::quick(&sealed)?;
        return Ok(None);
    }
    verify::full(&sealed, trusted, sink).map(Some)
}

fn extract_media(args: &VerifyArgs, trusted: &TrustedKeys, stdout: &Stdout) -> anyhow::Result<u8> {
    let file = single_file(args)?;
    let out = args.output.as_deref().expect("clap requires --output");
    if args.quick {
        bail!("--extract-media always verifies fully; drop --quick");
    }
    if out.as_os_str() == "-" {
        if io::stdout().is_terminal() {
            bail!("refusing to write media to a terminal: use -o FILE or a pipe");
        }
        // Bytes already written cannot be taken back from a pipe: verify first, then copy.
        check(file, args, trusted, None)?;
        SealedFile::open(file)?.hash_media(Some(&mut stdout.raw()))?;
        return Ok(EXIT_OK);
    }
    verify::extract(&SealedFile::open(file)?, trusted, None, out)?;
    stdout.write(&cli::path_line(out, args.null));
    Ok(EXIT_OK)
}

/// Verify fully, then remux the audio or the video of the verified media into --output.
fn extract_streams(
    args: &VerifyArgs,
    trusted: &TrustedKeys,
    kind: StreamKind,
    stdout: &Stdout,
) -> anyhow::Result<u8> {
    let file = single_file(args)?;
    let out = args.output.as_deref().expect("clap requires --output");
    if args.quick {
        bail!("--extract-audio and --extract-video always verify fully; drop --quick");
    }
    verify::extract(&SealedFile::open(file)?, trusted, Some(kind), out)?;
    stdout.write(&cli::path_line(out, args.null));
    Ok(EXIT_OK)
}

fn show(args: &VerifyArgs, trusted: &TrustedKeys, stdout: &Stdout) -> anyhow::Result<u8> {
    let file = single_file(args)?;
    let identity = args.identity.as_deref().expect("clap requires --identity");
    check(file, args, trusted, None)?;
    let sealed = SealedFile::open(file)?;
    let vocab = callrec::vocab::Vocabulary::configured(args.vocabulary.as_deref())?;
    let record = verify::read_text(&sealed, identity)?;
    let line = record.to_line(&vocab).ok();
    if args.json {
        stdout.write(&wire::json_line(&wire::Verify::Text {
            path: file.into(),
            record: &record,
            line,
        }));
        stdout.write(&wire::json_line(&wire::Verify::Summary {
            verified: 1,
            failed: 0,
            errors: 0,
            chain_issues: 0,
        }));
    } else {
        stdout.write(&record.to_json());
        match line {
            Some(line) => stdout.write(format!("{line}\n").as_bytes()),
            None => {
                eprintln!("{PROG}: the record holds characters the figure 3C line cannot carry")
            }
        }
    }
    Ok(EXIT_OK)
}

fn verify_all(args: &VerifyArgs, trusted: &TrustedKeys, stdout: &Stdout) -> anyhow::Result<u8> {
    let files = cli::expand_dirs(cli::input_paths(&args.files, args.null)?, cli::Walk::Sealed)?;
    if files.is_empty() {
        bail!("no input: name sealed files or directories, or pipe a list of paths on stdin");
    }
    let progress = if io::stderr().is_terminal() && !args.json && files.len() > 1 {
        indicatif::ProgressBar::new(files.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let results: Vec<(PathBuf, Result<Option<Verified>, VerifyError>)> = files
        .into_par_iter()
        .map(|path| {
            let result = check(&path, args, trusted, None);
            progress.inc(1);
            (path, result)
        })
        .collect();
    progress.finish_and_clear();

    let (mut verified, mut failed, mut errors) = (0, 0, 0);
    for (path, result) in &results {
        let wire_path = WirePath::from(path.as_path());
        let wire = match result {
            Ok(v) => {
                verified += 1;
                if !args.json {
                    stdout.write(&cli::path_line(path, args.null));
                    continue;
                }
                let m = v.as_ref().map(|v| &v.manifest);
                wire::Verify::Verdict {
                    path: wire_path,
                    status: VerdictStatus::Verified,
                    quick: args.quick,
                    check: None,
                    message: None,
                    record_id: m.map(|m| m.record_id.as_str()),
                    key_id: m.map(|m| m.key_id.as_str()),
                    sequence: m.map(|m| m.sequence),
                    sealed_at: m.map(|m| m.sealed_at.to_rfc3339()),
                    corrects: m
                        .and_then(|m| m.extra("corrects"))
                        .and_then(|c| c.split(' ').next()),
                }
            }
            Err(err) => {
                let (status, check) = match err {
                    VerifyError::Failed { check, .. } => {
                        failed += 1;
                        (VerdictStatus::Failed, Some(*check))
                    }
                    VerifyError::Io(_) => {
                        errors += 1;
                        (VerdictStatus::Error, None)
                    }
                };
                let message = cli::error_chain(err);
                eprintln!("{PROG}: {path:?}: {}", status_word(status, &message));
                wire::Verify::Verdict {
                    path: wire_path,
                    status,
                    quick: args.quick,
                    check,
                    message: Some(message),
                    record_id: None,
                    key_id: None,
                    sequence: None,
                    sealed_at: None,
                    corrects: None,
                }
            }
        };
        if args.json {
            stdout.write(&wire::json_line(&wire));
        }
    }

    let chain_input: Vec<(PathBuf, Verified)> = results
        .iter()
        .filter_map(|(p, r)| match r {
            Ok(Some(v)) => Some((p.clone(), v.clone())),
            _ => None,
        })
        .collect();
    let issues = verify::check_chain(&chain_input);
    for issue in &issues {
        eprintln!("{PROG}: chain: {issue}");
        if args.json {
            let (status, key_id, paths) = match issue {
                ChainIssue::Gap { key_id, .. } => (ChainStatus::Gap, key_id, Vec::new()),
                ChainIssue::Fork { key_id, paths, .. } => (
                    ChainStatus::Fork,
                    key_id,
                    paths.iter().map(|p| p.as_path().into()).collect(),
                ),
                ChainIssue::BrokenLink { key_id, path, .. } => {
                    (ChainStatus::Fork, key_id, vec![path.as_path().into()])
                }
            };
            stdout.write(&wire::json_line(&wire::Verify::Chain {
                status,
                key_id,
                message: issue.to_string(),
                paths,
            }));
        }
    }
    let histories = verify::histories(&chain_input);
    for history in &histories {
        if args.json {
            let versions = history
                .versions
                .iter()
                .map(|v| wire::VerifyVersion {
                    path: v.path.as_path().into(),
                    record_id: v.manifest.record_id.as_str(),
                    sealed_at: v.manifest.sealed_at.to_rfc3339(),
                    corrects: v.corrects(),
                })
                .collect();
            stdout.write(&wire::json_line(&wire::Verify::History {
                record_id: &history.record_id,
                versions,
            }));
        } else {
            eprintln!("{PROG}: history of record {}:", history.record_id);
            for v in &history.versions {
                let what = match v.corrects() {
                    Some(id) => format!("correction of {id}"),
                    None => "original".to_string(),
                };
                eprintln!(
                    "  {} {what}, sealed {}: {:?}",
                    v.manifest.record_id, v.manifest.sealed_at, v.path
                );
            }
        }
    }
    if args.json {
        stdout.write(&wire::json_line(&wire::Verify::Summary {
            verified,
            failed,
            errors,
            chain_issues: issues.len(),
        }));
    } else if failed + errors + issues.len() > 0 || io::stderr().is_terminal() {
        eprintln!(
            "{PROG}: {verified} verified, {failed} failed, {errors} could not be checked{}",
            if issues.is_empty() {
                String::new()
            } else {
                format!(", {} chain issues", issues.len())
            }
        );
    }
    Ok(if failed > 0 || !issues.is_empty() {
        EXIT_FAILED
    } else if errors > 0 {
        EXIT_ERROR
    } else {
        EXIT_OK
    })
}

fn status_word(status: VerdictStatus, message: &str) -> String {
    match status {
        VerdictStatus::Failed => format!("FAILED: {message}"),
        _ => format!("could not check: {message}"),
    }
}
