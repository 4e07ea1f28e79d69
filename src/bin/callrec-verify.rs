//! callrec-verify: check sealed call records. See `callrec-verify --help`.

use std::io::{self, IsTerminal};
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use clap::Parser;

use callrec::anchor;
use callrec::anchor::tsp::TsaTrust;
use callrec::args::VerifyArgs;
use callrec::cli::{self, EXIT_ERROR, EXIT_FAILED, EXIT_OK};
use callrec::keys::TrustedKeys;
use callrec::media::StreamKind;
use callrec::verify::evidence::{self, SetOptions};
use callrec::verify::{self, ChainIssue, Check, SealedFile, VerifyError};
use callrec::wire::{self, ChainStatus, VerdictStatus};

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
        let file = single_file(&args)?;
        if anchor::is_anchor_name(file) {
            stdout.write(anchor::explain(file).as_bytes());
            return Ok(EXIT_OK);
        }
        let sealed = SealedFile::open(file)?;
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
    if let Some(out) = &args.bundle {
        need_key("--bundle")?;
        return bundle(&args, out, &trusted, stdout);
    }
    need_key("verification")?;
    verify_all(&args, &trusted, stdout)
}

/// A file given alone: every check, or the quick ones with --quick (no anchors, no chain).
fn check_alone(path: &Path, args: &VerifyArgs, trusted: &TrustedKeys) -> Result<(), VerifyError> {
    let tsa = TsaTrust::default();
    let options = SetOptions {
        trusted,
        tsa: &tsa,
        quick: args.quick,
    };
    evidence::check_sealed(path, &options).map(drop)
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
        check_alone(file, args, trusted)?;
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
    check_alone(file, args, trusted)?;
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
            anchored: 0,
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
    let tsa = TsaTrust::load(&callrec::places::tsa_ca(&args.tsa_ca))?;
    let files = cli::expand_dirs(
        cli::input_paths(&args.files, args.null)?,
        cli::Walk::Evidence,
    )?;
    if files.is_empty() {
        bail!("no input: name sealed files or directories, or pipe a list of paths on stdin");
    }
    let progress = if io::stderr().is_terminal() && !args.json && files.len() > 1 {
        indicatif::ProgressBar::new(files.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let options = SetOptions {
        trusted,
        tsa: &tsa,
        quick: args.quick,
    };
    let report = evidence::verify_set(files, &options, || progress.inc(1));
    progress.finish_and_clear();
    for (path, err) in report.errors() {
        eprintln!("{PROG}: {path:?}: {}", failure(err));
    }
    let mut anchored = 0;
    for (path, result) in &report.sealed {
        let covering = result
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .and_then(|v| report.anchor_of(v));
        anchored += usize::from(covering.is_some());
        if !tsa.is_empty() && !args.json {
            if let Ok(Some(_)) = result {
                match covering {
                    Some(a) => eprintln!(
                        "{PROG}: {path:?}: anchored at {} by {} ({:?})",
                        a.stamp.time, a.stamp.tsa, a.path
                    ),
                    None => eprintln!("{PROG}: {path:?}: not yet anchored"),
                }
            }
        }
        if !args.json {
            if result.is_ok() {
                stdout.write(&cli::path_line(path, args.null));
            }
            continue;
        }
        let m = result
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .map(|v| &v.manifest);
        let (status, check, message) = verdict(result.as_ref().err());
        stdout.write(&wire::json_line(&wire::Verify::Verdict {
            path: path.as_path().into(),
            status,
            quick: args.quick,
            check,
            message,
            record_id: m.map(|m| m.record_id.as_str()),
            key_id: m.map(|m| m.key_id.as_str()),
            sequence: m.map(|m| m.sequence),
            sealed_at: m.map(|m| m.sealed_at.to_rfc3339()),
            corrects: m
                .and_then(|m| m.extra("corrects"))
                .and_then(|c| c.split(' ').next()),
            anchored_at: covering.map(|a| a.stamp.time.to_rfc3339()),
            anchor: covering.map(|a| a.path.as_path().into()),
        }));
    }
    for (path, result) in &report.anchors {
        if !args.json {
            if result.is_ok() {
                stdout.write(&cli::path_line(path, args.null));
            }
            continue;
        }
        let a = result.as_ref().ok();
        let (status, check, message) = verdict(result.as_ref().err());
        stdout.write(&wire::json_line(&wire::Verify::Anchor {
            path: path.as_path().into(),
            status,
            check,
            message,
            key_id: a.map(|a| a.anchor.key_id.as_str()),
            sequence: a.map(|a| a.anchor.sequence),
            time: a.map(|a| a.stamp.time.to_rfc3339()),
            tsa: a.map(|a| a.stamp.tsa.as_str()),
            trusted: a.map(|a| a.stamp.trusted),
        }));
    }
    for issue in &report.chain {
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
    for finding in &report.times {
        let message = finding.to_string();
        if finding.contradiction {
            eprintln!("{PROG}: chain: {message}");
        } else {
            eprintln!("{PROG}: warning: {message}");
        }
        if args.json {
            let paths = vec![finding.path.as_path().into()];
            stdout.write(&wire::json_line(&if finding.contradiction {
                wire::Verify::Chain {
                    status: ChainStatus::Time,
                    key_id: &finding.key_id,
                    message,
                    paths,
                }
            } else {
                wire::Verify::Warning { message, paths }
            }));
        }
    }
    for history in &report.histories {
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
    let (verified, failed, errors, chain_issues) = (
        report.verified(),
        report.failed(),
        report.unreadable(),
        report.chain_issues(),
    );
    if args.json {
        stdout.write(&wire::json_line(&wire::Verify::Summary {
            verified,
            failed,
            errors,
            chain_issues,
            anchored,
        }));
    } else if failed + errors + chain_issues > 0 || io::stderr().is_terminal() {
        let mut line =
            format!("{verified} verified, {failed} failed, {errors} could not be checked");
        if chain_issues > 0 {
            line.push_str(&format!(", {chain_issues} chain issues"));
        }
        if !report.anchors.is_empty() || !tsa.is_empty() {
            let records = report.records().len();
            line.push_str(&format!(", {anchored} of {records} sealed files anchored"));
        }
        eprintln!("{PROG}: {line}");
    }
    Ok(if failed > 0 || chain_issues > 0 {
        EXIT_FAILED
    } else if errors > 0 {
        EXIT_ERROR
    } else {
        EXIT_OK
    })
}

/// A file's status for the JSON verdict: verified, or failed (proven bad) or error (could not
/// be checked), with the check and the message.
fn verdict(err: Option<&VerifyError>) -> (VerdictStatus, Option<Check>, Option<String>) {
    match err {
        None => (VerdictStatus::Verified, None, None),
        Some(e @ VerifyError::Failed { check, .. }) => (
            VerdictStatus::Failed,
            Some(*check),
            Some(cli::error_chain(e)),
        ),
        Some(e @ VerifyError::Io(_)) => (VerdictStatus::Error, None, Some(cli::error_chain(e))),
    }
}

/// The stderr line for a file that did not verify.
fn failure(err: &VerifyError) -> String {
    let message = cli::error_chain(err);
    match err {
        VerifyError::Failed { .. } => format!("FAILED: {message}"),
        VerifyError::Io(_) => format!("could not check: {message}"),
    }
}

/// --bundle: verify every file as one set and, only if all of it verifies, write the court
/// bundle (callrec::verify::bundle); print its path, or why it was refused.
fn bundle(
    args: &VerifyArgs,
    out: &Path,
    trusted: &TrustedKeys,
    stdout: &Stdout,
) -> anyhow::Result<u8> {
    let files = cli::expand_dirs(
        cli::input_paths(&args.files, args.null)?,
        cli::Walk::Evidence,
    )?;
    let tsa = TsaTrust::load(&callrec::places::tsa_ca(&args.tsa_ca))?;
    let pubkeys = callrec::places::pubkeys(&args.pubkey);
    let maker = callrec::verify::bundle::Maker::here();
    let options = callrec::verify::bundle::Options {
        files: &files,
        pubkeys: &pubkeys,
        trusted,
        tsa: &tsa,
        maker: &maker,
    };
    let summary = |verified, failed, errors, chain_issues, anchored| {
        wire::json_line(&wire::Verify::Summary {
            verified,
            failed,
            errors,
            chain_issues,
            anchored,
        })
    };
    match callrec::verify::bundle::make(out, &options) {
        Ok(made) => {
            for warning in &made.warnings {
                eprintln!("{PROG}: warning: {warning}");
            }
            if args.json {
                stdout.write(&wire::json_line(&wire::Verify::Bundle {
                    path: made.path.as_path().into(),
                    files: made.files,
                }));
                stdout.write(&summary(made.files, 0, 0, 0, made.anchored));
            } else {
                stdout.write(&cli::path_line(&made.path, args.null));
            }
            Ok(EXIT_OK)
        }
        Err(callrec::verify::bundle::BundleError::NotVerified(rejection)) => {
            for (path, err) in &rejection.files {
                eprintln!("{PROG}: {path:?}: {}", failure(err));
            }
            for issue in &rejection.chain {
                eprintln!("{PROG}: chain: {issue}");
            }
            eprintln!("{PROG}: error: no bundle written to {out:?}: only evidence that verifies goes into a bundle ({rejection})");
            if args.json {
                let failed = rejection
                    .files
                    .iter()
                    .filter(|(_, e)| e.exit_code() == 1)
                    .count();
                let errors = rejection.files.len() - failed;
                let verified = files.len().saturating_sub(rejection.files.len());
                stdout.write(&summary(verified, failed, errors, rejection.chain.len(), 0));
            }
            Ok(rejection.exit_code())
        }
        Err(e) => Err(e.into()),
    }
}
